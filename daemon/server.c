/* server: MDP requests in, one reply out for each (see server.h). */
#include "server.h"

#include "access.h"
#include "case_event.h"
#include "log.h"
#include "mdp.h"
#include "mp_guard.h"
#include "request.h"
#include "stats.h"
#include "writer.h"
#include "zwatch.h"
#include "zap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define MAX_FRAMES       8          /* identity + the four MDP frames, and some slack */
#define MAX_IDENTITY     256
#define RECV_BUDGET      256        /* messages per loop turn */
#define LIST_SCAN_BUDGET 20000      /* index entries one case.list may examine */
/* ZeroMQ drops a connection that sends a frame larger than this, before we see it;
 * bodies between REQUEST_MAX_BODY and this get a bad_request reply. */
#define MAX_FRAME_BYTES  (4 << 20)

/* Where a reply goes: copied out of the request so it outlives the frames. */
typedef struct {
    unsigned char identity[MAX_IDENTITY];
    size_t        identity_len;
    bool          delimited;
    char          service[MDP_MAX_SERVICE];
    size_t        service_len;
    char          rid[REQUEST_MAX_RID];
    size_t        rid_len;
    bool          has_rid;
    principal    *who;          /* the sender, authenticated (or the dev principal) */
} reply_to;

struct server {
    uv_loop_t       *loop;
    void            *sock;
    store           *store;
    const city      *city;
    writer          *writer;
    zwatch          *watch;
    server_options   opt;
    msgpack_sbuffer  out;           /* reply scratch, loop thread */
    msgpack_zone     zone;          /* request unpacking, cleared per request */
    char            *catalog;       /* the catalogue's four pairs, packed once */
    size_t           catalog_len;
    int              stats_running; /* stats queries in the thread pool */
    struct feed_wait *feed_waits;   /* pulls waiting for events */
    size_t           feed_waiting;
    uv_timer_t       feed_timer;
    bool             feed_timer_open;
};

/* A write on its way through the writer: a create or an action. */
typedef struct {
    writer_op      op;
    server        *srv;
    reply_to       to;
    bool           is_create;
    request_create create;
    request_act    act;
    store_actor    actor;
    int            rc;
    gl_error       err;
    store_created  created;
    char           body[];           /* the request body: the requests' strings point here */
} write_op;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- replies --- */

static void send_frames(server *s, const reply_to *to, const void *body, size_t len)
{
    const int more = ZMQ_SNDMORE | ZMQ_DONTWAIT;
    /* ROUTER drops a reply to a peer that has gone or whose queue is full: nothing to
     * do about either but note it. */
    if (zmq_send(s->sock, to->identity, to->identity_len, more) < 0) {
        log_debug("reply dropped: %s", zmq_strerror(errno));
        return;
    }
    if (to->delimited) {
        zmq_send(s->sock, "", 0, more);
    }
    zmq_send(s->sock, MDP_CLIENT, strlen(MDP_CLIENT), more);
    zmq_send(s->sock, to->service, to->service_len, more);
    zmq_send(s->sock, body, len, ZMQ_DONTWAIT);
}

static void reply_error(server *s, const reply_to *to, const gl_error *err)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(&s->out);
    msgpack_packer_init(&pk, &s->out, msgpack_sbuffer_write);
    gl_error_pack(&pk, err, to->has_rid ? to->rid : NULL, to->rid_len);
    send_frames(s, to, s->out.data, s->out.size);
}

static void reply_fail(server *s, const reply_to *to, int code, const char *field,
                       const char *message)
{
    gl_error err;
    gl_error_set(&err, code, field, "%s", message);
    reply_error(s, to, &err);
}

/* Starts a success reply {"ok": true, <pairs>..., "rid"?}: the caller packs `pairs`
 * key/value pairs, then calls reply_finish. */
static void reply_begin(server *s, const reply_to *to, msgpack_packer *pk, uint32_t pairs)
{
    msgpack_sbuffer_clear(&s->out);
    msgpack_packer_init(pk, &s->out, msgpack_sbuffer_write);
    msgpack_pack_map(pk, 1 + pairs + (to->has_rid ? 1 : 0));
    mp_pack_cstr(pk, "ok");
    msgpack_pack_true(pk);
}

static void reply_finish(server *s, const reply_to *to, msgpack_packer *pk)
{
    if (to->has_rid) {
        mp_pack_cstr(pk, "rid");
        msgpack_sbuffer_write(&s->out, to->rid, to->rid_len);
    }
    send_frames(s, to, s->out.data, s->out.size);
}

static void pack_raw(server *s, gl_str raw)
{
    msgpack_sbuffer_write(&s->out, raw.p, raw.n);
}

/* A stored case as `who` may see it: its wire map, with the reporter masked for some. */
static void pack_case(server *s, const principal *who, gl_str raw)
{
    size_t mark = s->out.size;
    if (store_case_wire(raw, access_pack_flags(who), &s->out) != 0) {
        s->out.size = mark;   /* never a half-written map, never the unmasked bytes */
        msgpack_packer pk;
        msgpack_packer_init(&pk, &s->out, msgpack_sbuffer_write);
        msgpack_pack_nil(&pk);
    }
}

/* --- case.create and case.act --- */

static int write_apply(writer_op *op, store_txn *txn)
{
    write_op *w = (write_op *)op;
    /* Afresh: a batch applied again after the map grew (writer.h) calls this twice. */
    free(w->created.data);
    memset(&w->created, 0, sizeof w->created);
    gl_error_clear(&w->err);
    if (w->is_create) {
        w->rc = store_case_create(txn, gl_str_c(w->to.who->name), &w->create, now_ms(),
                                  &w->created, &w->err);
    } else {
        w->rc = store_case_act(txn, w->srv->city, &w->act, &w->actor, now_ms(), &w->created,
                               &w->err);
    }
    if (w->rc == GL_ECONFLICT || w->rc == GL_ENOT_FOUND || w->rc == GL_EINVALID
        || w->rc == GL_EFORBIDDEN) {
        return 0;   /* the request's own refusal; the batch goes on */
    }
    return w->rc;
}

static void write_done(writer_op *op, int status)
{
    write_op *w = (write_op *)op;
    server *s = w->srv;
    w->to.who->in_flight--;
    if (status != 0 && w->rc != status) {
        /* Nothing of the batch was written, whatever this request's own outcome in it was
         * (a replay or a refusal can rest on an earlier request of the same batch): the
         * one true answer is to retry. */
        gl_error_clear(&w->err);
        gl_error_set(&w->err, status, NULL, "the store could not commit (%s); nothing was "
                     "stored: retry%s", gl_error_name(status),
                     w->is_create ? " with the same request_id" : "");
        w->rc = status;
    }
    if (w->rc != 0) {
        reply_error(s, &w->to, &w->err);
    } else {
        msgpack_packer pk;
        reply_begin(s, &w->to, &pk, w->is_create ? 2 : 1);
        mp_pack_cstr(&pk, "case");
        pack_case(s, w->to.who, gl_str_of(w->created.data, w->created.len));
        if (w->is_create) {
            mp_pack_cstr(&pk, "replayed");
            w->created.replayed ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
        }
        reply_finish(s, &w->to, &pk);
    }
    free(w->created.data);
    free(w);
    if (s->watch != NULL) {
        zwatch_kick(s->watch);
    }
}

static int unpack_body(server *s, const char *p, size_t n, msgpack_object *o, gl_error *err)
{
    msgpack_zone_clear(&s->zone);
    if (mp_unpack(p, n, &s->zone, o) != 0) {
        return gl_error_set(err, GL_EBAD_REQUEST, NULL, "body is not MessagePack");
    }
    if (o->type != MSGPACK_OBJECT_MAP) {
        return gl_error_set(err, GL_EBAD_REQUEST, NULL, "body must be a MessagePack map");
    }
    return 0;
}

/* Copies the body into a new write_op (the request's strings will point into the copy)
 * and unpacks it there. Returns NULL after replying when it cannot. */
static write_op *write_op_new(server *s, const reply_to *to, gl_str body, msgpack_object *o)
{
    gl_error err;
    gl_error_clear(&err);
    if (writer_pending(s->writer) >= s->opt.max_pending) {
        reply_fail(s, to, GL_EOVERLOADED, NULL, "too many writes in flight; retry shortly");
        return NULL;
    }
    if (to->who->in_flight >= to->who->max_in_flight) {
        gl_error_set(&err, GL_EOVERLOADED, NULL, "%s has %u writes waiting for a commit, its "
                     "limit (max_in_flight): wait for their replies, then retry", to->who->name,
                     to->who->in_flight);
        reply_error(s, to, &err);
        return NULL;
    }
    write_op *w = calloc(1, sizeof *w + body.n);
    if (w == NULL) {
        reply_fail(s, to, GL_EOVERLOADED, NULL, "out of memory; retry shortly");
        return NULL;
    }
    memcpy(w->body, body.p, body.n);
    if (unpack_body(s, w->body, body.n, o, &err) != 0) {
        reply_error(s, to, &err);
        free(w);
        return NULL;
    }
    w->op.apply = write_apply;
    w->op.done = write_done;
    w->srv = s;
    w->to = *to;
    return w;
}

static void write_submit(server *s, write_op *w)
{
    if (writer_submit(s->writer, &w->op) != 0) {
        reply_fail(s, &w->to, GL_EUNAVAILABLE, NULL, "the daemon is stopping; retry when it "
                   "is back");
        free(w);
        return;
    }
    w->to.who->in_flight++;
}

static void handle_create(server *s, const reply_to *to, gl_str body)
{
    gl_error err;
    msgpack_object o;
    write_op *w = write_op_new(s, to, body, &o);
    if (w == NULL) {
        return;
    }
    gl_error_clear(&err);
    w->is_create = true;
    if (request_parse_create(&o, now_ms(), &w->create, &err) != 0) {
        goto refuse;
    }
    if (w->create.category.n > 0 && city_category_find(s->city, w->create.category) < 0) {
        gl_error_set(&err, GL_EINVALID, "category", "unknown category \"%.*s\": catalog.get "
                     "lists the codes", (int)w->create.category.n, w->create.category.p);
        goto refuse;
    }
    if (city_location_check(s->city, &w->create.location, &err) != 0
        || access_create(w->to.who, s->city, &w->create.location, &err) != 0) {
        goto refuse;
    }
    if (w->create.agent.n > 0) {
        int p = city_place_find(s->city, w->create.agent);
        if (p < 0 || s->city->places[p].level != PLACE_COMMUNITY) {
            gl_error_set(&err, GL_EINVALID, "agent", "agent must be the code of a community "
                         "(the one following the case for the resident); catalog.get lists "
                         "them");
            goto refuse;
        }
    }
    write_submit(s, w);
    return;

refuse:
    reply_error(s, to, &err);
    free(w);
}

/* In the writer's transaction: may the sender act on the case as it is now? */
static int act_check(void *arg, const case_record *c, gl_error *err)
{
    write_op *w = arg;
    return access_case(w->to.who, w->srv->city, c, err);
}

static void handle_act(server *s, const reply_to *to, gl_str body)
{
    gl_error err;
    msgpack_object o;
    write_op *w = write_op_new(s, to, body, &o);
    if (w == NULL) {
        return;
    }
    gl_error_clear(&err);
    if (request_parse_act(&o, now_ms(), &w->act, &err) != 0
        || access_action(w->to.who, w->act.action, &err) != 0) {
        reply_error(s, to, &err);
        free(w);
        return;
    }
    w->actor.name = gl_str_c(w->to.who->name);
    w->actor.check = act_check;
    w->actor.arg = w;
    write_submit(s, w);
}

/* --- case.get --- */

typedef struct {
    gl_str *items;
    size_t  n, cap;
} raw_list;

static int raw_list_add(void *arg, gl_str raw)
{
    raw_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap != 0 ? l->cap * 2 : 16;
        gl_str *items = realloc(l->items, cap * sizeof *items);
        if (items == NULL) {
            return GL_EINTERNAL;
        }
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = raw;
    return 0;
}

/* case.list's collector: the cases the asker may see (access_list has narrowed the
 * filter to its scope already; this also keeps a grid gateway to its own cases). */
typedef struct {
    raw_list        list;
    const principal *who;
    const city      *town;
} case_list;

static int case_list_add(void *arg, gl_str raw, const case_record *c)
{
    case_list *l = arg;
    if (access_case(l->who, l->town, c, NULL) != 0) {
        return 1;   /* passed over */
    }
    return raw_list_add(&l->list, raw);
}

/* feed.pull's collector for a principal whose place lies below a district: the events
 * name only the district, so each event's case is read and checked. */
typedef struct {
    raw_list         list;
    store_reader    *r;
    const principal *who;
    const city      *town;
    msgpack_zone     zone;
} event_list;

static int event_list_add(void *arg, gl_str raw)
{
    event_list *l = arg;
    case_event e;
    case_record c;
    gl_str stored;
    if (case_event_decode(raw, &l->zone, &e) != 0
        || store_read_case(l->r, e.case_id, &stored) != 0
        || store_case_decode(stored, &l->zone, &c) != 0) {
        return GL_EINTERNAL;
    }
    if (access_case(l->who, l->town, &c, NULL) != 0) {
        return STORE_EVENT_SKIP;
    }
    return raw_list_add(&l->list, raw);
}

static void handle_get(server *s, const reply_to *to, const msgpack_object *o)
{
    gl_error err;
    request_get req;
    store_reader *r = NULL;
    raw_list history = { NULL, 0, 0 };
    gl_str raw;
    int rc;

    gl_error_clear(&err);
    if (request_parse_get(o, &req, &err) != 0) {
        reply_error(s, to, &err);
        return;
    }
    if (store_read_begin(s->store, &r) != 0) {
        reply_fail(s, to, GL_EINTERNAL, NULL, "cannot read the store");
        return;
    }
    rc = req.code.n > 0 ? store_read_case_by_code(r, req.code, &raw)
                        : store_read_case(r, req.id, &raw);
    if (rc == GL_ENOT_FOUND) {
        if (req.code.n > 0) {
            gl_error_set(&err, rc, "code", "no case with code \"%.*s\"", (int)req.code.n,
                         req.code.p);
        } else {
            gl_error_set(&err, rc, "id", "no case with id %llu", (unsigned long long)req.id);
        }
        reply_error(s, to, &err);
        goto out;
    }
    if (rc == 0) {
        case_record c;
        msgpack_zone_clear(&s->zone);
        if (case_record_decode(raw.p, raw.n, &s->zone, &c) != 0) {
            rc = GL_EINTERNAL;
        } else if (access_case(to->who, s->city, &c, &err) != 0) {
            reply_error(s, to, &err);
            goto out;
        } else if (req.history) {
            rc = store_read_history(r, c.id, raw_list_add, &history);
        }
    }
    if (rc != 0) {
        reply_fail(s, to, GL_EINTERNAL, NULL, "cannot read the case");
        goto out;
    }
    msgpack_packer pk;
    reply_begin(s, to, &pk, req.history ? 2 : 1);
    mp_pack_cstr(&pk, "case");
    pack_case(s, to->who, raw);
    if (req.history) {
        mp_pack_cstr(&pk, "history");
        msgpack_pack_array(&pk, (uint32_t)history.n);
        for (size_t i = 0; i < history.n; i++) {
            pack_raw(s, history.items[i]);
        }
    }
    reply_finish(s, to, &pk);
out:
    free(history.items);
    store_read_end(&r);
}

/* --- case.list --- */

static void handle_list(server *s, const reply_to *to, const msgpack_object *o)
{
    gl_error err;
    request_list req;
    store_reader *r = NULL;
    case_list cases = { { NULL, 0, 0 }, to->who, s->city };
    uint64_t next = 0;

    gl_error_clear(&err);
    if (request_parse_list(o, &req, &err) != 0
        || access_list(to->who, s->city, &req.filter, &err) != 0) {
        reply_error(s, to, &err);
        return;
    }
    if (store_read_begin(s->store, &r) != 0) {
        reply_fail(s, to, GL_EINTERNAL, NULL, "cannot read the store");
        return;
    }
    if (store_list(r, &req.filter, req.after, req.limit, now_ms(), LIST_SCAN_BUDGET,
                   case_list_add, &cases, &next) != 0) {
        reply_fail(s, to, GL_EINTERNAL, NULL, "cannot list the cases");
        goto out;
    }
    msgpack_packer pk;
    reply_begin(s, to, &pk, 2);
    mp_pack_cstr(&pk, "cases");
    msgpack_pack_array(&pk, (uint32_t)cases.list.n);
    for (size_t i = 0; i < cases.list.n; i++) {
        pack_case(s, to->who, cases.list.items[i]);
    }
    mp_pack_cstr(&pk, "next");
    next != 0 ? msgpack_pack_uint64(&pk, next) : msgpack_pack_nil(&pk);
    reply_finish(s, to, &pk);
out:
    free(cases.list.items);
    store_read_end(&r);
}

/* --- stats.query --- */

/* A stats query scans up to STATS_MAX_CASES cases (seconds, for the largest): it runs in
 * the libuv thread pool with a read transaction of its own, and the loop only sends the
 * reply, so no other request waits for it. */
#define STATS_MAX_RUNNING 2

typedef struct {
    uv_work_t       work;
    server         *srv;
    reply_to        to;
    request_stats   req;
    msgpack_sbuffer out;      /* the reply's stats pairs */
    gl_error        err;
    int             rc;
} stats_job;

static void stats_work(uv_work_t *w)
{
    stats_job *j = w->data;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &j->out, msgpack_sbuffer_write);
    j->rc = stats_query(j->srv->store, j->srv->city, &j->req, STATS_MAX_CASES, &pk, &j->err);
}

static void stats_after(uv_work_t *w, int status)
{
    stats_job *j = w->data;
    server *s = j->srv;
    s->stats_running--;
    if (s->sock != NULL) {
        if (status != 0 || j->rc != 0) {
            if (status != 0) {
                gl_error_set(&j->err, GL_EINTERNAL, NULL, "the query was cancelled");
            }
            reply_error(s, &j->to, &j->err);
        } else {
            msgpack_packer pk;
            reply_begin(s, &j->to, &pk, STATS_REPLY_PAIRS);
            msgpack_sbuffer_write(&s->out, j->out.data, j->out.size);
            reply_finish(s, &j->to, &pk);
        }
        if (s->watch != NULL) {
            zwatch_kick(s->watch);
        }
    }
    msgpack_sbuffer_destroy(&j->out);
    free(j);
}

static void handle_stats(server *s, const reply_to *to, const msgpack_object *o)
{
    gl_error err;
    gl_error_clear(&err);
    if (s->stats_running >= STATS_MAX_RUNNING) {
        reply_fail(s, to, GL_EOVERLOADED, NULL, "other statistics are being counted; retry "
                   "in a few seconds");
        return;
    }
    stats_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        reply_fail(s, to, GL_EOVERLOADED, NULL, "out of memory; retry shortly");
        return;
    }
    if (request_parse_stats(o, &j->req, &err) != 0) {
        reply_error(s, to, &err);
        free(j);
        return;
    }
    j->srv = s;
    j->to = *to;
    msgpack_sbuffer_init(&j->out);
    j->work.data = j;
    if (uv_queue_work(s->loop, &j->work, stats_work, stats_after) != 0) {
        msgpack_sbuffer_destroy(&j->out);
        free(j);
        reply_fail(s, to, GL_EINTERNAL, NULL, "cannot start the query");
        return;
    }
    s->stats_running++;
}

/* --- feed.pull --- */

#define FEED_SCAN_BUDGET 20000   /* events one pull may examine */
/* ... when each event's case is read too (a scope below a district): a pull stays
 * under a few milliseconds of the loop; `next` goes on from where it stopped. */
#define FEED_SCAN_BUDGET_BY_CASE 2000
#define FEED_MAX_WAITING 10000   /* pulls parked waiting for events */
#define FEED_TICK_MS     100     /* how often parked pulls' time limits are looked at */

/* A pull waiting for events: a copy of what it asked, since its frames are gone. */
typedef struct feed_wait {
    struct feed_wait *next;
    reply_to          to;
    request_feed      req;
    char              filter[3][REQUEST_MAX_CODE];
    uint64_t          deadline;      /* uv_now() when it is answered empty */
} feed_wait;

typedef struct {
    raw_list list;
} feed_result;

/* Runs the pull; replies and returns true when it has events, or must be answered now
 * (force: its time is up, or the daemon is stopping). When it has none, req->after moves
 * to the head: a parked pull whose filter matched nothing must not scan the same events
 * again on every commit. */
static bool feed_answer(server *s, const reply_to *to, request_feed *req, bool force)
{
    store_reader *r = NULL;
    event_list collect;
    memset(&collect, 0, sizeof collect);
    collect.who = to->who;
    collect.town = s->city;
    raw_list *events = &collect.list;
    bool by_case = access_feed_by_case(to->who, s->city);
    uint64_t examined = req->after, head;
    gl_error err;
    bool done = true;

    if (store_read_begin(s->store, &r) != 0) {
        reply_fail(s, to, GL_EINTERNAL, NULL, "cannot read the store");
        return true;
    }
    head = store_read_head(r);
    if (req->after > head) {
        gl_error_set(&err, GL_EINVALID, "after", "after %llu is beyond the last event (%llu): "
                     "this store is older than the position you hold (restored from a "
                     "backup?)", (unsigned long long)req->after, (unsigned long long)head);
        reply_error(s, to, &err);
        goto out;
    }
    collect.r = r;
    if (by_case) {
        msgpack_zone_init(&collect.zone, 4096);
    }
    if (store_read_events(r, req->after, req->limit, req->unit, req->district, req->category,
                          by_case ? FEED_SCAN_BUDGET_BY_CASE : FEED_SCAN_BUDGET,
                          by_case ? event_list_add : raw_list_add,
                          by_case ? (void *)&collect : (void *)events, &examined) != 0) {
        reply_fail(s, to, GL_EINTERNAL, NULL, "cannot read the events");
        goto out;
    }
    if (events->n == 0 && examined == head && !force) {
        done = false;   /* nothing yet: the caller may park it */
        req->after = examined;
        goto out;
    }
    msgpack_packer pk;
    reply_begin(s, to, &pk, 3);
    mp_pack_cstr(&pk, "events");
    msgpack_pack_array(&pk, (uint32_t)events->n);
    for (size_t i = 0; i < events->n; i++) {
        pack_raw(s, events->items[i]);
    }
    mp_pack_cstr(&pk, "last");
    msgpack_pack_uint64(&pk, head);
    /* With a filter, events that did not match were passed over: go on after them. */
    mp_pack_cstr(&pk, "next");
    msgpack_pack_uint64(&pk, examined);
    reply_finish(s, to, &pk);
out:
    free(events->items);
    if (by_case) {
        msgpack_zone_destroy(&collect.zone);
    }
    store_read_end(&r);
    return done;
}

static void feed_tick(uv_timer_t *h);

static void handle_feed(server *s, const reply_to *to, const msgpack_object *o)
{
    gl_error err;
    request_feed req;
    gl_error_clear(&err);
    if (request_parse_feed(o, &req, &err) != 0
        || access_feed(to->who, s->city, &req, &err) != 0) {
        reply_error(s, to, &err);
        return;
    }
    if (feed_answer(s, to, &req, req.wait_ms == 0)) {
        return;
    }
    if (s->feed_waiting >= FEED_MAX_WAITING) {
        feed_answer(s, to, &req, true);   /* answered at once, empty, rather than refused */
        return;
    }
    feed_wait *w = calloc(1, sizeof *w);
    if (w == NULL) {
        feed_answer(s, to, &req, true);
        return;
    }
    w->to = *to;
    w->req = req;
    gl_str *src[3] = { &w->req.unit, &w->req.district, &w->req.category };
    for (int i = 0; i < 3; i++) {
        if (src[i]->n > 0) {   /* an absent filter is (NULL, 0): nothing to copy */
            memcpy(w->filter[i], src[i]->p, src[i]->n);
            src[i]->p = w->filter[i];
        }
    }
    w->deadline = uv_now(s->loop) + req.wait_ms;
    w->next = s->feed_waits;
    s->feed_waits = w;
    s->feed_waiting++;
    if (!uv_is_active((uv_handle_t *)&s->feed_timer)) {
        uv_timer_start(&s->feed_timer, feed_tick, FEED_TICK_MS, FEED_TICK_MS);
    }
}

/* Answers the parked pulls that now have events, or whose time is up (all of them
 * when force). */
static void feed_wake(server *s, bool expired_only, bool force)
{
    uint64_t now = uv_now(s->loop);
    feed_wait **pp = &s->feed_waits;
    while (*pp != NULL) {
        feed_wait *w = *pp;
        bool due = force || now >= w->deadline;
        bool answered = (expired_only && !due) ? false : feed_answer(s, &w->to, &w->req, due);
        if (answered) {
            *pp = w->next;
            s->feed_waiting--;
            free(w);
        } else {
            pp = &w->next;
        }
    }
    if (s->feed_waits == NULL) {
        uv_timer_stop(&s->feed_timer);
    }
    if (s->watch != NULL) {
        zwatch_kick(s->watch);
    }
}

static void feed_tick(uv_timer_t *h)
{
    feed_wake(h->data, true, false);
}

void server_on_commit(server *s)
{
    if (s->feed_waits != NULL) {
        feed_wake(s, false, false);
    }
}

/* --- catalog.get --- */

static void handle_catalog(server *s, const reply_to *to, const msgpack_object *o)
{
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR || !gl_str_eq(gl_str_of(k->via.str.ptr,
                                                                  k->via.str.size), "rid")) {
            char field[64];
            size_t n = k->type == MSGPACK_OBJECT_STR ? k->via.str.size : 0;
            snprintf(field, sizeof field, "%.*s", (int)(n > 60 ? 60 : n),
                     n > 0 ? k->via.str.ptr : "");
            reply_fail(s, to, GL_EINVALID, field, "unknown field: catalog.get takes none");
            return;
        }
    }
    msgpack_packer pk;
    reply_begin(s, to, &pk, 4);
    msgpack_sbuffer_write(&s->out, s->catalog, s->catalog_len);
    reply_finish(s, to, &pk);
}

/* --- mmi.* (RFC 8) --- */

static bool serves(gl_str name)
{
    static const char *const services[] = {
        "case.create", "case.get", "case.list", "case.act", "catalog.get", "feed.pull",
        "stats.query"
    };
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
        if (gl_str_eq(name, services[i])) {
            return true;
        }
    }
    return false;
}

static void handle_mmi(server *s, const reply_to *to, gl_str service, gl_str body)
{
    const char *answer = "501";
    if (gl_str_eq(service, "mmi.service")) {
        answer = serves(body) || gl_str_eq(body, "mmi.service") ? "200" : "404";
    }
    send_frames(s, to, answer, 3);
}

/* --- dispatch --- */

/* A copy of a sender's bytes fit to quote in a message (which must be UTF-8): anything
 * but printable ASCII becomes '?'. */
static void printable(gl_str in, char *out, size_t cap)
{
    size_t n = 0;
    for (uint32_t i = 0; i < in.n && n + 1 < cap; i++) {
        unsigned char b = (unsigned char)in.p[i];
        out[n++] = b >= 0x20 && b < 0x7f && b != '"' ? (char)b : '?';
    }
    out[n] = '\0';
}

/* Who sent this message: the principal the ZAP handler named in the connection's
 * User-Id, or the development principal. Replies `unauthenticated` and returns false
 * when there is none (a keyed daemon whose table no longer has the name). */
static bool identify(server *s, zmq_msg_t *frame, reply_to *to)
{
    principal *dev = principals_dev_principal(s->opt.principals);
    if (dev != NULL) {
        to->who = dev;
        return true;
    }
    const char *user = zmq_msg_gets(frame, "User-Id");
    to->who = user != NULL ? principals_by_name(s->opt.principals, gl_str_c(user)) : NULL;
    if (to->who == NULL) {
        /* reply_error needs no principal; nothing else runs for this request. */
        reply_fail(s, to, GL_EUNAUTHENTICATED, NULL, "this connection has no principal: "
                   "connect with CURVE and a key listed in the daemon's keys file");
        return false;
    }
    return true;
}

/* The sender's token bucket (principals.h: rate, burst). Replies `overloaded` and
 * returns false when it is empty. */
static bool rate_take(server *s, const reply_to *to)
{
    principal *p = to->who;
    if (p->rate <= 0) {
        return true;
    }
    uint64_t now = uv_now(s->loop);
    if (p->refilled_ms == 0) {
        p->refilled_ms = now;
    }
    p->tokens += (double)(now - p->refilled_ms) * p->rate / 1000.0;
    p->refilled_ms = now;
    if (p->tokens > p->burst) {
        p->tokens = p->burst;
    }
    if (p->tokens >= 1.0) {
        p->tokens -= 1.0;
        return true;
    }
    gl_error err;
    gl_error_set(&err, GL_EOVERLOADED, NULL, "%s is over its rate of %g requests a second; "
                 "retry in %d ms", p->name, p->rate,
                 (int)((1.0 - p->tokens) * 1000.0 / p->rate) + 1);
    reply_error(s, to, &err);
    return false;
}

static void handle(server *s, zmq_msg_t *frames, size_t n, bool too_many)
{
    reply_to to;
    mdp_frame mf[MAX_FRAMES];
    mdp_client_request req;
    const char *why = NULL;
    gl_error err;

    memset(&to, 0, sizeof to);
    gl_error_clear(&err);
    to.identity_len = zmq_msg_size(&frames[0]);
    if (to.identity_len == 0 || to.identity_len > MAX_IDENTITY) {
        return;   /* no return address we can use */
    }
    memcpy(to.identity, zmq_msg_data(&frames[0]), to.identity_len);
    for (size_t i = 1; i < n; i++) {
        mf[i - 1].p = zmq_msg_data(&frames[i]);
        mf[i - 1].n = zmq_msg_size(&frames[i]);
    }
    int rc = mdp_client_parse(mf, n - 1, &req, &why);
    to.delimited = n > 1 ? req.delimited : true;
    if (req.service.n > 0 && req.service.n <= MDP_MAX_SERVICE) {
        memcpy(to.service, req.service.p, req.service.n);
        to.service_len = req.service.n;
    }
    if (too_many) {
        rc = -1;
        why = "too many frames: expected \"\", \"MDPC01\", service, body";
    }
    if (rc != 0) {
        reply_fail(s, &to, GL_EBAD_REQUEST, NULL, why);
        return;
    }
    if (mdp_is_mmi(req.service)) {
        handle_mmi(s, &to, req.service, req.body);
        return;
    }
    /* The rid is looked for before anything else is judged, so that every refusal
     * below still reaches a pipelining client's matching request. */
    int guard = -1;
    if (req.body.n <= REQUEST_MAX_BODY) {
        guard = mp_guard_check(req.body.p, req.body.n, &mp_guard_request_limits, &why);
    }
    if (guard == 0) {
        const char *rid;
        request_find_rid(req.body.p, req.body.n, &rid, &to.rid_len);
        if (rid != NULL && to.rid_len <= sizeof to.rid) {
            memcpy(to.rid, rid, to.rid_len);
            to.has_rid = true;
        }
    }
    /* The identity frame is made by ROUTER and carries no metadata; the peer's frames do. */
    if (!identify(s, &frames[n - 1], &to)) {
        return;
    }
    if (!serves(req.service)) {
        char name[MDP_MAX_SERVICE + 1];
        printable(req.service, name, sizeof name);
        gl_error_set(&err, GL_EUNKNOWN_SERVICE, NULL, "no service \"%s\"; this daemon "
                     "serves case.create, case.get, case.list, case.act, feed.pull, catalog.get, "
                     "stats.query", name);
        reply_error(s, &to, &err);
        return;
    }
    if (req.body.n > REQUEST_MAX_BODY) {
        gl_error_set(&err, GL_EBAD_REQUEST, NULL, "body is %u bytes; at most %d",
                     req.body.n, REQUEST_MAX_BODY);
        reply_error(s, &to, &err);
        return;
    }
    if (guard != 0) {
        gl_error_set(&err, GL_EBAD_REQUEST, NULL, "body is not acceptable MessagePack: %s",
                     why);
        reply_error(s, &to, &err);
        return;
    }
    if (!rate_take(s, &to)
        || access_service_allowed(to.who, (access_service)access_service_parse(req.service),
                                  &err) != 0) {
        if (err.code != 0) {
            reply_error(s, &to, &err);
        }
        return;
    }
    if (gl_str_eq(req.service, "case.create")) {
        handle_create(s, &to, req.body);
        return;
    }
    if (gl_str_eq(req.service, "case.act")) {
        handle_act(s, &to, req.body);
        return;
    }
    msgpack_object o;
    if (unpack_body(s, req.body.p, req.body.n, &o, &err) != 0) {
        reply_error(s, &to, &err);
        return;
    }
    if (gl_str_eq(req.service, "case.get")) {
        handle_get(s, &to, &o);
    } else if (gl_str_eq(req.service, "case.list")) {
        handle_list(s, &to, &o);
    } else if (gl_str_eq(req.service, "feed.pull")) {
        handle_feed(s, &to, &o);
    } else if (gl_str_eq(req.service, "stats.query")) {
        handle_stats(s, &to, &o);
    } else {
        handle_catalog(s, &to, &o);
    }
}

static void on_message(void *arg)
{
    server *s = arg;
    zmq_msg_t frames[MAX_FRAMES];
    size_t n = 0;
    bool too_many = false;
    for (;;) {
        zmq_msg_t f;
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, s->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f);
            break;   /* EAGAIN before the first frame; a message's frames come whole */
        }
        bool more = zmq_msg_more(&f) != 0;
        if (n < MAX_FRAMES) {
            frames[n++] = f;
        } else {
            too_many = true;
            zmq_msg_close(&f);
        }
        if (!more) {
            break;
        }
    }
    if (n > 0) {
        handle(s, frames, n, too_many);
    }
    for (size_t i = 0; i < n; i++) {
        zmq_msg_close(&frames[i]);
    }
}

int server_set_curve(void *sock, const char *secret_key, const char *zap_domain)
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0
        || zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret_key, strlen(secret_key) + 1) != 0
        || zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, zap_domain, strlen(zap_domain)) != 0) {
        return -1;
    }
    return 0;
}

server *server_new(uv_loop_t *loop, void *zctx, store *st, const city *c, writer *w,
                   const server_options *opt, char *err, size_t errlen)
{
    server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->store = st;
    s->city = c;
    s->writer = w;
    s->opt = *opt;
    msgpack_sbuffer_init(&s->out);
    msgpack_zone_init(&s->zone, 8192);

    msgpack_sbuffer cat;
    msgpack_packer pk;
    msgpack_sbuffer_init(&cat);
    msgpack_packer_init(&pk, &cat, msgpack_sbuffer_write);
    if (city_pack_catalog(c, &pk) != 0) {
        msgpack_sbuffer_destroy(&cat);
        snprintf(err, errlen, "cannot pack the catalogue");
        goto fail;
    }
    s->catalog_len = cat.size;
    s->catalog = msgpack_sbuffer_release(&cat);
    msgpack_sbuffer_destroy(&cat);

    s->sock = zmq_socket(zctx, ZMQ_ROUTER);
    if (s->sock == NULL) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        goto fail;
    }
    int64_t maxmsg = MAX_FRAME_BYTES;
    int hwm = 100000, linger = 2000;
    zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (principals_secure(opt->principals) && server_set_curve(s->sock, opt->secret_key,
                                                               ZAP_DOMAIN_REQUESTS) != 0) {
        snprintf(err, errlen, "cannot set CURVE on the request socket: %s",
                 zmq_strerror(errno));
        goto fail;
    }
    if (zmq_bind(s->sock, opt->endpoint) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s (is another gridlined running? "
                 "use --endpoint)", opt->endpoint, zmq_strerror(errno));
        goto fail;
    }
    uv_timer_init(loop, &s->feed_timer);
    s->feed_timer.data = s;
    s->feed_timer_open = true;
    s->watch = zwatch_new(loop, s->sock, RECV_BUDGET, on_message, s);
    if (s->watch == NULL) {
        snprintf(err, errlen, "cannot watch the request socket");
        goto fail;
    }
    return s;

fail:
    server_destroy(&s);
    return NULL;
}

void server_set_principals(server *s, principals *table)
{
    s->opt.principals = table;
}

void server_pause(server *s)
{
    if (s->watch != NULL) {
        zwatch_pause(s->watch);
    }
    /* Waiting pulls are answered now with what there is: the daemon is going. */
    feed_wake(s, false, true);
}

void server_close(server *s)
{
    if (s->feed_timer_open) {
        feed_wake(s, false, true);
        uv_timer_stop(&s->feed_timer);
        uv_close((uv_handle_t *)&s->feed_timer, NULL);
        s->feed_timer_open = false;
    }
    zwatch_destroy(&s->watch);
    if (s->sock != NULL) {
        /* Close flushes queued replies, up to ZMQ_LINGER. */
        zmq_close(s->sock);
        s->sock = NULL;
    }
}

void server_destroy(server **sp)
{
    if (sp == NULL || *sp == NULL) {
        return;
    }
    server *s = *sp;
    server_close(s);
    free(s->catalog);
    msgpack_sbuffer_destroy(&s->out);
    msgpack_zone_destroy(&s->zone);
    free(s);
    *sp = NULL;
}
