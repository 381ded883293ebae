/* tls.h - TLS for stream listeners (syslog over TLS, RFC 5425) with OpenSSL.
 *
 * A `tls:` section on a TCP listener turns it into a TLS listener: a
 * certificate chain and key, optional verification of client certificates
 * against a CA (mTLS) with an allow-list of peer names, and a minimum
 * protocol version. SIGHUP reloads the certificate, key and CA files; a set
 * that does not load is refused (logged) and the running one stays.
 *
 * Design: the SSL_CTX is swapped under a mutex on reload; each connection
 * holds its own reference through its SSL object, so a reload never
 * disturbs a connection in progress. Handshakes are non-blocking and driven
 * by the I/O loop. Every refused handshake is logged with the peer and the
 * reason and counted.
 * Threads: lsf_tls_new/reload/free on the main thread; accept, handshake
 * and reads on the I/O thread.
 */
#ifndef LSF_TLS_H
#define LSF_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>

#include "core/config.h"
#include "core/metrics.h"

typedef struct lsf_tls lsf_tls;

/* Binds and loads the `tls:` map `node` of stage `stage`. Returns NULL with
 * err set (file:line:col) when a key or a file is wrong. */
lsf_tls *lsf_tls_new(const lsf_node *node, const char *stage, lsf_errbuf *err);
void lsf_tls_free(lsf_tls *t);
/* Loads the files again (SIGHUP); keeps the running set on error. Returns
 * 0 or -1 (logged). */
int lsf_tls_reload(lsf_tls *t);
/* A server-side SSL for the accepted socket fd. Never NULL. */
SSL *lsf_tls_accept(lsf_tls *t, int fd);
/* One handshake step. Returns 1 when done (and the peer is allowed), 0 when
 * it waits for the socket (*want_write: for writing), -1 when it failed
 * (logged with `peer` and counted). */
int lsf_tls_handshake(lsf_tls *t, SSL *ssl, const char *peer, bool *want_write);
/* recv(2) over TLS: bytes, 0 at the peer's close, -1 with errno (EAGAIN
 * when TLS needs more from the socket, ECONNRESET/EPROTO on errors). */
ssize_t lsf_tls_read(SSL *ssl, char *buf, size_t cap);

/* Settings for `logsift help`. */
extern const lsf_key lsf_tls_keys[];

#endif
