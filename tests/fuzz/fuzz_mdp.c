/*
 * fuzz_mdp: the MDP/0.1 client frame parser (mdp_client_parse), which sees every
 * request's frames before anything else does.
 *
 * The input is cut into 0..8 frames: the first byte, modulo 9, is the number of frames;
 * every frame but the last is a one-byte length followed by that many bytes (fewer if
 * the input runs out), and the last frame is whatever remains. Lengths of one byte are
 * enough: the header, delimiter and service frames are short (a service is at most 64
 * bytes), and the body, the only long frame, is last in a well-formed request.
 *
 * Each frame is copied into a block of its own exact size, as ZeroMQ hands them over,
 * and the frame array has exactly n entries, so a read past the end of a frame or past
 * the last frame is caught by AddressSanitizer instead of landing in the next one.
 */
#include "fuzz_target.h"

#include "mdp.h"

#include <string.h>

#define FUZZ_MAX_FRAMES 8

/* True when s is exactly one of the n frames (the parser returns borrowed frames). */
static bool
is_a_frame(gl_str s, const mdp_frame *frames, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (s.p == frames[i].p && s.n == frames[i].n) {
            return true;
        }
    }
    return false;
}

static void
check_parse(const mdp_frame *frames, size_t n)
{
    mdp_client_request req;
    const char        *why = NULL;
    int                rc;

    rc = mdp_client_parse(frames, n, &req, &why);
    fuzz_expect(rc == 0 || rc == -1, "mdp_client_parse returns 0 or -1");
    fuzz_expect(req.delimited == (n > 0 && frames[0].n == 0),
                "delimited says whether the first frame is empty");

    /* The service is echoed in the reply even on failure, into a buffer of
     * MDP_MAX_SERVICE bytes: it must be a real frame of bounded size. */
    if (req.service.n > 0) {
        fuzz_expect(req.service.n <= MDP_MAX_SERVICE, "service is at most 64 bytes");
        fuzz_expect(is_a_frame(req.service, frames, n), "service is one of the frames");
    }
    if (req.body.n > 0) {
        fuzz_expect(is_a_frame(req.body, frames, n), "body is one of the frames");
    }
    (void)mdp_is_mmi(req.service);

    if (rc != 0) {
        fuzz_expect(why != NULL && why[0] != '\0', "a refusal says why");
        return;
    }
    /* Accepted: exactly "", "MDPC01", service, body, and nothing else. */
    fuzz_expect(n == 4, "an accepted request has 4 frames");
    fuzz_expect(frames[0].n == 0, "an accepted request starts with the delimiter");
    fuzz_expect(frames[1].n == 6 && memcmp(frames[1].p, MDP_CLIENT, 6) == 0,
                "an accepted request has the MDPC01 header");
    fuzz_expect(req.service.p == frames[2].p && req.service.n == frames[2].n,
                "the service is the third frame");
    fuzz_expect(req.service.n >= 1, "an accepted service is not empty");
    fuzz_expect(req.body.p == frames[3].p && req.body.n == frames[3].n,
                "the body is the fourth frame");
    fuzz_expect(mdp_is_mmi(req.service)
                    == (req.service.n >= 4 && memcmp(req.service.p, "mmi.", 4) == 0),
                "mdp_is_mmi is the mmi. prefix");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mdp_frame     *frames;
    unsigned char *blocks[FUZZ_MAX_FRAMES] = { NULL };
    size_t         n;
    size_t         pos = 1;
    size_t         i;

    if (size == 0) {
        return 0;
    }
    n = data[0] % (FUZZ_MAX_FRAMES + 1);
    frames = calloc(n, sizeof *frames);   /* may be NULL for n = 0: never read then */
    if (frames == NULL && n > 0) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        size_t len;

        if (i + 1 < n) {
            len = pos < size ? data[pos++] : 0;
            if (len > size - pos) {
                len = size - pos;
            }
        } else {
            len = size - pos;
        }
        blocks[i] = fuzz_copy(data + pos, len);
        if (blocks[i] == NULL) {
            goto done;
        }
        frames[i].p = blocks[i];
        frames[i].n = len;
        pos += len;
    }
    check_parse(frames, n);

done:
    for (i = 0; i < n; i++) {
        free(blocks[i]);
    }
    free(frames);
    return 0;
}
