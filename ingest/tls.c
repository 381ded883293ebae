/* tls.c - OpenSSL server contexts for stream listeners (see tls.h).
 *
 * Design: one SSL_CTX per listener built from the files, replaced whole on
 * reload; peer names are checked after the handshake against the
 * certificate's DNS subject alternative names and, failing those, its
 * common name, with '*' wildcards in the allow-list.
 * Threads: the context pointer is guarded by a mutex (reload on the main
 * thread, SSL_new on the I/O thread); an SSL is used by the I/O thread.
 */
#include "tls.h"

#include <errno.h>
#include <fnmatch.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

enum { VERIFY_NONE, VERIFY_OPTIONAL, VERIFY_REQUIRED };
enum { MIN_TLS12, MIN_TLS13 };

typedef struct tls_conf {
    char *cert_file, *key_file, *ca_file;
    int verify_client;
    lsf_strlist allowed_peers;
    int min_version;
} tls_conf;

const lsf_key lsf_tls_keys[] = {
    {"cert_file", LSF_K_STR, NULL, "PEM certificate (chain) presented to clients.",
     offsetof(tls_conf, cert_file), NULL, 0, 0, true},
    {"key_file", LSF_K_STR, NULL, "PEM private key of the certificate.",
     offsetof(tls_conf, key_file), NULL, 0, 0, true},
    {"ca_file", LSF_K_STR, NULL, "PEM CA certificates that client certificates must chain to.",
     offsetof(tls_conf, ca_file), NULL, 0, 0, false},
    {"verify_client", LSF_K_ENUM, "none",
     "none; optional (a certificate, if sent, must verify); required (mTLS: no certificate, no "
     "connection).",
     offsetof(tls_conf, verify_client), "none|optional|required", 0, 0, false},
    {"allowed_peers", LSF_K_STRLIST, NULL,
     "Client certificate names (DNS SAN or CN, '*' wildcards) that may connect; empty: any "
     "verified client.",
     offsetof(tls_conf, allowed_peers), NULL, 0, 0, false},
    {"min_version", LSF_K_ENUM, "1.2", "Oldest TLS version accepted.",
     offsetof(tls_conf, min_version), "1.2|1.3", 0, 0, false},
    LSF_KEYS_END,
};

struct lsf_tls {
    tls_conf conf;
    char *stage;
    pthread_mutex_t lock;
    SSL_CTX *ctx;
    const lsf_node *node;
    lsf_counter *c_handshakes, *c_failed, *c_not_allowed, *c_reloads;
};

/* The first OpenSSL error as text (or `dflt`), clearing the queue. */
static const char *ssl_reason(char *buf, size_t cap, const char *dflt)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(buf, cap, "%s", dflt);
    } else {
        const char *r = ERR_reason_error_string(e);
        snprintf(buf, cap, "%s", r ? r : "unknown TLS error");
    }
    ERR_clear_error();
    return buf;
}

/* Builds a context from the files; NULL with msg set. */
static SSL_CTX *build(const tls_conf *c, char *msg, size_t cap, const char **bad_key)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        lsf_die("out of memory (SSL_CTX)");
    SSL_CTX_set_min_proto_version(ctx, c->min_version == MIN_TLS13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(ctx, c->cert_file) != 1) {
        *bad_key = "cert_file";
        snprintf(msg, cap, "cannot load certificate %s: %s", c->cert_file, ssl_reason(why, sizeof(why), "?"));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, c->key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        *bad_key = "key_file";
        snprintf(msg, cap, "cannot use key %s: %s", c->key_file, ssl_reason(why, sizeof(why), "?"));
        goto fail;
    }
    if (c->verify_client != VERIFY_NONE) {
        if (!c->ca_file) {
            *bad_key = "ca_file";
            snprintf(msg, cap, "verify_client needs a ca_file");
            goto fail;
        }
        if (SSL_CTX_load_verify_locations(ctx, c->ca_file, NULL) != 1) {
            *bad_key = "ca_file";
            snprintf(msg, cap, "cannot load CA file %s: %s", c->ca_file, ssl_reason(why, sizeof(why), "?"));
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(c->ca_file);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx,
                           SSL_VERIFY_PEER |
                               (c->verify_client == VERIFY_REQUIRED ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           NULL);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

lsf_tls *lsf_tls_new(const lsf_node *node, const char *stage, lsf_errbuf *err)
{
    lsf_tls *t = calloc(1, sizeof(*t));
    if (!t || !(t->stage = strdup(stage)))
        lsf_die("out of memory");
    pthread_mutex_init(&t->lock, NULL);
    t->node = node;
    if (node->kind != LSF_NODE_MAP) {
        lsf_node_error(err, node, "tls must be a map (cert_file, key_file, ...)");
        goto fail;
    }
    if (lsf_conf_bind(&t->conf, lsf_tls_keys, node, NULL, err) < 0)
        goto fail;
    if (t->conf.allowed_peers.n && t->conf.verify_client == VERIFY_NONE) {
        lsf_node_error(err, lsf_node_get(node, "allowed_peers"),
                       "allowed_peers needs verify_client: required (or optional)");
        goto fail;
    }
    char msg[600];
    const char *bad = NULL;
    t->ctx = build(&t->conf, msg, sizeof(msg), &bad);
    if (!t->ctx) {
        const lsf_node *at = lsf_node_get(node, bad);
        lsf_node_error(err, at ? at : node, "%s", msg);
        goto fail;
    }
    t->c_handshakes = lsf_counter_new(stage, "tls_handshakes");
    t->c_failed = lsf_counter_new(stage, "tls_handshakes_failed");
    t->c_not_allowed = lsf_counter_new(stage, "tls_peers_not_allowed");
    t->c_reloads = lsf_counter_new(stage, "tls_reloads");
    return t;
fail:
    lsf_tls_free(t);
    return NULL;
}

void lsf_tls_free(lsf_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    lsf_conf_free(&t->conf, lsf_tls_keys);
    pthread_mutex_destroy(&t->lock);
    free(t->stage);
    free(t);
}

int lsf_tls_reload(lsf_tls *t)
{
    char msg[600];
    const char *bad = NULL;
    SSL_CTX *ctx = build(&t->conf, msg, sizeof(msg), &bad);
    if (!ctx) {
        lsf_err("%s: TLS reload refused, keeping the running certificates: %s", t->stage, msg);
        return -1;
    }
    pthread_mutex_lock(&t->lock);
    SSL_CTX *old = t->ctx;
    t->ctx = ctx;
    pthread_mutex_unlock(&t->lock);
    SSL_CTX_free(old); /* connections keep theirs through their SSL */
    lsf_counter_add(t->c_reloads, 1);
    lsf_info("%s: TLS certificates reloaded", t->stage);
    return 0;
}

SSL *lsf_tls_accept(lsf_tls *t, int fd)
{
    pthread_mutex_lock(&t->lock);
    SSL *ssl = SSL_new(t->ctx);
    pthread_mutex_unlock(&t->lock);
    if (!ssl || SSL_set_fd(ssl, fd) != 1)
        lsf_die("out of memory (SSL)");
    SSL_set_accept_state(ssl);
    return ssl;
}

static bool name_allowed(const tls_conf *c, const char *name)
{
    for (size_t i = 0; i < c->allowed_peers.n; i++)
        if (fnmatch(c->allowed_peers.v[i], name, FNM_CASEFOLD) == 0)
            return true;
    return false;
}

/* The peer's certificate names against the allow-list; `who` gets the
 * first name for the log. */
static bool peer_allowed(const tls_conf *c, SSL *ssl, char *who, size_t cap)
{
    snprintf(who, cap, "no certificate");
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (!cert)
        return c->allowed_peers.n == 0 && c->verify_client != VERIFY_REQUIRED;
    bool ok = c->allowed_peers.n == 0, named = false;
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != GEN_DNS)
            continue;
        const char *dns = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
        if (!named)
            snprintf(who, cap, "%s", dns);
        named = true;
        ok = ok || name_allowed(c, dns);
    }
    GENERAL_NAMES_free(sans);
    char cn[256];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn)) > 0) {
        if (!named)
            snprintf(who, cap, "%s", cn);
        ok = ok || name_allowed(c, cn);
    }
    X509_free(cert);
    return ok;
}

int lsf_tls_handshake(lsf_tls *t, SSL *ssl, const char *peer, bool *want_write)
{
    *want_write = false;
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl);
    if (rc == 1) {
        char who[256];
        if (!peer_allowed(&t->conf, ssl, who, sizeof(who))) {
            lsf_warn("%s: TLS client %s refused: certificate name %s is not in allowed_peers",
                     t->stage, peer, who);
            lsf_counter_add(t->c_not_allowed, 1);
            return -1;
        }
        lsf_counter_add(t->c_handshakes, 1);
        lsf_info("%s: TLS client %s: %s, %s, peer certificate: %s", t->stage, peer,
                 SSL_get_version(ssl), SSL_get_cipher_name(ssl), who);
        return 1;
    }
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ)
        return 0;
    if (e == SSL_ERROR_WANT_WRITE) {
        *want_write = true;
        return 0;
    }
    char why[256];
    long vr = SSL_get_verify_result(ssl);
    ssl_reason(why, sizeof(why), e == SSL_ERROR_SYSCALL ? "connection closed during the handshake" : "?");
    lsf_warn("%s: TLS handshake with %s failed: %s%s%s", t->stage, peer, why,
             vr != X509_V_OK ? "; certificate: " : "",
             vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
    lsf_counter_add(t->c_failed, 1);
    return -1;
}

ssize_t lsf_tls_read(SSL *ssl, char *buf, size_t cap)
{
    ERR_clear_error();
    int n = SSL_read(ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    if (n > 0)
        return n;
    switch (SSL_get_error(ssl, n)) {
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_SYSCALL:
        if (n == 0 && !ERR_peek_error())
            return 0; /* closed without close_notify: treated as the end */
        errno = errno ? errno : ECONNRESET;
        ERR_clear_error();
        return -1;
    default:
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
}
