/* mdp: MDP/0.1 client framing (RFC 7) and the MMI namespace (RFC 8). */
#include "mdp.h"

#include <string.h>

static bool frame_is(const mdp_frame *f, const char *s)
{
    size_t n = strlen(s);
    return f->n == n && memcmp(f->p, s, n) == 0;
}

int mdp_client_parse(const mdp_frame *frames, size_t n, mdp_client_request *out,
                     const char **why)
{
    memset(out, 0, sizeof *out);
    size_t i = 0;
    if (n > 0 && frames[0].n == 0) {
        out->delimited = true;
        i = 1;
    }
    if (i >= n) {
        *why = "no frames after the delimiter: expected \"MDPC01\", service, body";
        return -1;
    }
    if (!out->delimited) {
        /* Read on so the reply can name the service, but refuse: the contract's first
         * frame is the empty delimiter, and a DEALER must send it. */
        if (frame_is(&frames[i], MDP_CLIENT) && i + 1 < n && frames[i + 1].n <= MDP_MAX_SERVICE) {
            out->service = gl_str_of(frames[i + 1].p, frames[i + 1].n);
        }
        *why = "missing the empty delimiter frame: send \"\", \"MDPC01\", service, body "
               "(a REQ socket adds it; a DEALER must send it)";
        return -1;
    }
    if (!frame_is(&frames[i], MDP_CLIENT)) {
        *why = "wrong protocol header: expected \"MDPC01\" (MDP/0.1 client)";
        return -1;
    }
    i++;
    if (i >= n) {
        *why = "missing service frame";
        return -1;
    }
    if (frames[i].n == 0 || frames[i].n > MDP_MAX_SERVICE) {
        *why = "service name must be 1 to 64 bytes";
        return -1;
    }
    out->service = gl_str_of(frames[i].p, frames[i].n);
    i++;
    if (i >= n) {
        *why = "missing body frame";
        return -1;
    }
    out->body = gl_str_of(frames[i].p, frames[i].n);
    i++;
    if (i != n) {
        *why = "too many frames: expected \"\", \"MDPC01\", service, body";
        return -1;
    }
    return 0;
}

bool mdp_is_mmi(gl_str service)
{
    return service.n >= 4 && memcmp(service.p, "mmi.", 4) == 0;
}
