/* gen.c - deterministic generator of realistic syslog traffic for the benchmarks.
 *
 *   gen [--lines N] [--seed S] [--v5424 PERCENT] [--hosts N] [--mix all|app] [--rate R]
 *       > traffic.log
 *
 * Writes N newline-terminated syslog lines (default 100000) to stdout and a
 * summary (lines, bytes, average line length, mix) to stderr. The same seed
 * gives the same bytes on every machine: the generator uses its own PRNG
 * (splitmix64) and never the C library's random functions or the clock.
 *
 * The mix: sshd (accepted, failed, invalid user, disconnects), sudo, PAM
 * sessions, cron, kernel firewall drops (UFW and iptables), nginx and apache
 * access logs relayed through syslog, JSON application logs in the message,
 * postfix and systemd for variety. About 40% of lines are RFC 5424 (some with
 * structured data), the rest RFC 3164. Client addresses (IPv4 and IPv6, from
 * public-looking ranges) and host names, users and URLs are drawn from pools
 * with a Zipf-like distribution: a few values repeat a lot, a long tail
 * appears once or twice. Lines average about 200 bytes. --hosts sets the
 * host pool (default 400); --mix app writes only the JSON application lines,
 * each with a message, a duration and a user id (the anomaly stage's
 * benchmark: every line feeds all four of its detectors). Timestamps advance
 * 100-600 us a line (~2,900 lines a second of event time); --rate R makes
 * that R lines a second on average (a large fleet logs faster than a few
 * hundred hosts).
 *
 * Design choice: everything is written into one large buffer with a small
 * hand-rolled formatter, so 2M lines take well under a second.
 */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- PRNG and distributions ------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd64(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static uint32_t rnd(uint32_t n)
{
    return (uint32_t)(((rnd64() >> 32) * (uint64_t)n) >> 32);
}

static double rnd01(void)
{
    return (double)(rnd64() >> 11) / 9007199254740992.0;
}

/* A Zipf-like distribution over ranks 0..n-1 (weight 1/(r+1)^s), sampled by
 * binary search in its cumulative table. */
typedef struct zipf {
    uint32_t n;
    double *cdf;
} zipf;

static void zipf_init(zipf *z, uint32_t n, double s)
{
    z->n = n;
    z->cdf = malloc(n * sizeof(double));
    if (!z->cdf) {
        perror("malloc");
        exit(1);
    }
    double sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        sum += 1.0 / pow((double)i + 1, s);
        z->cdf[i] = sum;
    }
    for (uint32_t i = 0; i < n; i++)
        z->cdf[i] /= sum;
}

static uint32_t zipf_draw(const zipf *z)
{
    double u = rnd01();
    uint32_t lo = 0, hi = z->n - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (z->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- output buffer ---------------------------------------------------------- */

static char *out;
static size_t out_len, out_cap;
static unsigned long long out_total; /* bytes written so far */

static void flush_out(void)
{
    if (out_len && fwrite(out, 1, out_len, stdout) != out_len) {
        perror("write");
        exit(1);
    }
    out_total += out_len;
    out_len = 0;
}

static void put(const char *s, size_t n)
{
    if (out_len + n > out_cap)
        flush_out();
    memcpy(out + out_len, s, n);
    out_len += n;
}

static void puts_(const char *s)
{
    put(s, strlen(s));
}

static void putu(uint64_t v)
{
    char b[24];
    int i = 24;
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(b + i, (size_t)(24 - i));
}

/* Zero-padded to `w` digits. */
static void putu0(uint64_t v, int w)
{
    char b[24];
    int i = 24;
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v || 24 - i < w);
    put(b + i, (size_t)(24 - i));
}

static void putf(const char *fmt, ...)
{
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    put(b, (size_t)(n < (int)sizeof b ? n : (int)sizeof b - 1));
}

static void puthex(uint64_t v, int digits)
{
    static const char hx[] = "0123456789abcdef";
    char b[16];
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        b[i] = hx[v & 15];
    put(b, (size_t)digits);
}

/* ---- pools --------------------------------------------------------------------- */

#define N_IP4 60000
#define N_IP6 8000
#define N_USERS 3000
#define N_PATHS 2500

static uint32_t n_hosts = 400;
static uint32_t ip4[N_IP4];
static uint16_t ip6[N_IP6][8];
static zipf z_ip4, z_ip6, z_host, z_user, z_path, z_small;

static const char *const first_names[] = {
    "root", "admin", "ubuntu", "deploy", "git", "postgres", "oracle", "test", "user", "jenkins",
    "ansible", "backup", "www-data", "nagios", "alice", "bob", "carol", "dave", "erin", "frank",
    "grace", "heidi", "ivan", "judy", "mallory", "oscar", "peggy", "trent", "victor", "walter",
    "pi", "ftp", "guest", "support", "mysql", "hadoop", "elastic", "kafka", "minecraft", "steam"};
#define N_FIRST (sizeof first_names / sizeof *first_names)

static const char *const roles[] = {"web", "app", "db", "cache", "lb", "fw", "mail", "k8s-node",
                                    "build", "vpn", "dns", "mq"};
static const char *const sites[] = {"fra1", "ams2", "nyc3", "sfo2", "sgp1", "lon1", "tor1", "blr1"};

static const char *const path_roots[] = {"/api/v1/orders", "/api/v1/users", "/api/v2/search",
                                         "/static/js", "/static/css", "/images", "/blog",
                                         "/products", "/cart", "/checkout", "/login", "/wp-login.php",
                                         "/.env", "/health", "/metrics", "/download"};
static const char *const exts[] = {"", "", "", ".js", ".css", ".png", ".html", ".json", ".php"};
static const char *const agents[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/121.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:122.0) Gecko/20100101 Firefox/122.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "curl/7.88.1", "python-requests/2.31.0", "Go-http-client/1.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "kube-probe/1.28", "Prometheus/2.48.1"};
static const char *const methods[] = {"GET", "GET", "GET", "GET", "GET", "POST", "POST", "PUT",
                                      "DELETE", "HEAD"};
static const int statuses[] = {200, 200, 200, 200, 200, 200, 304, 301, 302, 404, 404, 403, 401,
                               500, 502, 503, 201, 204};

static const char *const cron_cmds[] = {
    "command -v debian-sa1 > /dev/null && debian-sa1 1 1",
    "cd / && run-parts --report /etc/cron.hourly",
    "/usr/local/bin/backup.sh --incremental >/dev/null 2>&1",
    "[ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; then /usr/lib/php/sessionclean; fi",
    "/usr/bin/certbot renew --quiet", "/opt/app/bin/rotate-tokens"};
static const char *const sudo_cmds[] = {
    "/usr/bin/systemctl restart nginx", "/usr/bin/apt-get update", "/usr/bin/journalctl -u app -n 200",
    "/bin/cat /var/log/auth.log", "/usr/bin/docker ps -a", "/usr/sbin/iptables -L -n",
    "/usr/bin/vim /etc/hosts", "/usr/bin/kubectl get pods -A"};
static const char *const app_names[] = {"orders", "billing", "auth-svc", "catalog", "gateway", "worker"};
static const char *const app_msgs[] = {"request served", "order placed", "payment authorized",
                                       "cache miss", "token refreshed", "upstream timeout",
                                       "user signed in", "job finished", "rate limit exceeded"};
static const char *const levels[] = {"info", "info", "info", "info", "debug", "warn", "error"};

static int is_public4(uint32_t a)
{
    uint8_t o1 = (uint8_t)(a >> 24), o2 = (uint8_t)(a >> 16);
    if (o1 == 0 || o1 == 10 || o1 == 127 || o1 >= 224)
        return 0;
    if (o1 == 172 && (o2 & 0xf0) == 16)
        return 0;
    if (o1 == 192 && o2 == 168)
        return 0;
    if (o1 == 169 && o2 == 254)
        return 0;
    if (o1 == 100 && (o2 & 0xc0) == 64)
        return 0;
    return 1;
}

static void pools_init(void)
{
    for (int i = 0; i < N_IP4; i++) {
        uint32_t a;
        do
            a = (uint32_t)rnd64();
        while (!is_public4(a));
        ip4[i] = a;
    }
    /* IPv6 from a handful of global-unicast /32s, as real traffic clusters. */
    static const uint16_t pfx[][2] = {{0x2a01, 0x04f8}, {0x2001, 0x41d0}, {0x2604, 0xa880},
                                      {0x2a03, 0x2880}, {0x2607, 0xf8b0}, {0x2400, 0xcb00},
                                      {0x2a02, 0x0c7f}, {0x2600, 0x1f18}};
    for (int i = 0; i < N_IP6; i++) {
        int p = (int)rnd(8);
        ip6[i][0] = pfx[p][0];
        ip6[i][1] = pfx[p][1];
        for (int k = 2; k < 8; k++)
            ip6[i][k] = (k < 4 || rnd(3)) ? (uint16_t)rnd(65536) : 0;
    }
    zipf_init(&z_ip4, N_IP4, 1.05);
    zipf_init(&z_ip6, N_IP6, 1.05);
    zipf_init(&z_host, n_hosts, 0.9);
    zipf_init(&z_user, N_USERS, 1.2);
    zipf_init(&z_path, N_PATHS, 1.1);
    zipf_init(&z_small, 64, 1.0);
}

static void put_ip4(uint32_t a)
{
    putu(a >> 24);
    put(".", 1);
    putu((a >> 16) & 255);
    put(".", 1);
    putu((a >> 8) & 255);
    put(".", 1);
    putu(a & 255);
}

/* RFC 5952 text: lower case, no leading zeros, the longest run of zero groups as "::". */
static void put_ip6(const uint16_t g[8])
{
    int best = -1, bestlen = 1;
    for (int i = 0; i < 8;) {
        if (g[i] == 0) {
            int j = i;
            while (j < 8 && g[j] == 0)
                j++;
            if (j - i > bestlen) {
                best = i;
                bestlen = j - i;
            }
            i = j;
        } else {
            i++;
        }
    }
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            put("::", 2);
            i += bestlen - 1;
            continue;
        }
        if (i && i != best + bestlen)
            put(":", 1);
        putf("%x", g[i]);
    }
}

/* A client address: 85% IPv4, 15% IPv6, both Zipf-distributed. */
static void put_client_ip(void)
{
    if (rnd(100) < 85)
        put_ip4(ip4[zipf_draw(&z_ip4)]);
    else
        put_ip6(ip6[zipf_draw(&z_ip6)]);
}

static void put_host(uint32_t h)
{
    putf("%s-%s-%02u", roles[h % 12], sites[(h / 12) % 8], h / 96 + 1);
}

static void put_user(void)
{
    uint32_t u = zipf_draw(&z_user);
    if (u < N_FIRST) {
        puts_(first_names[u]);
    } else {
        puts_(first_names[u % N_FIRST]);
        putu(u / N_FIRST);
    }
}

static void put_path(void)
{
    uint32_t p = zipf_draw(&z_path);
    puts_(path_roots[p % 16]);
    if (p >= 16) {
        put("/", 1);
        putu(p * 7919u % 100000u);
        puts_(exts[p % 9]);
    }
    if (p % 5 == 1) {
        puts_("?page=");
        putu(rnd(20) + 1);
        puts_("&sort=price");
    }
}

/* ---- time ---------------------------------------------------------------------- */

/* Seconds since 2026-03-03T00:00:00Z plus microseconds; advances ~0.3 ms a line. */
static uint64_t t_us;
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static void civil(uint64_t s, int *mon, int *day, int *h, int *mi, int *se)
{
    /* Starts 2026-03-03 and stays within March/April for any plausible run. */
    uint64_t days = s / 86400 + 2; /* day index in March, 0-based */
    s %= 86400;
    *h = (int)(s / 3600);
    *mi = (int)(s / 60 % 60);
    *se = (int)(s % 60);
    if (days < 31) {
        *mon = 2;
        *day = (int)days + 1;
    } else {
        *mon = 3;
        *day = (int)(days - 31) % 30 + 1;
    }
}

static void put_ts3164(void)
{
    int mon, day, h, mi, se;
    civil(t_us / 1000000, &mon, &day, &h, &mi, &se);
    puts_(months[mon]);
    putf(" %2d ", day);
    putu0((uint64_t)h, 2);
    put(":", 1);
    putu0((uint64_t)mi, 2);
    put(":", 1);
    putu0((uint64_t)se, 2);
}

static void put_ts5424(void)
{
    int mon, day, h, mi, se;
    civil(t_us / 1000000, &mon, &day, &h, &mi, &se);
    puts_("2026-");
    putu0((uint64_t)mon + 1, 2);
    put("-", 1);
    putu0((uint64_t)day, 2);
    put("T", 1);
    putu0((uint64_t)h, 2);
    put(":", 1);
    putu0((uint64_t)mi, 2);
    put(":", 1);
    putu0((uint64_t)se, 2);
    put(".", 1);
    putu0(t_us % 1000000, 6);
    puts_("+00:00");
}

static void put_httpdate(void)
{
    int mon, day, h, mi, se;
    civil(t_us / 1000000, &mon, &day, &h, &mi, &se);
    putu0((uint64_t)day, 2);
    put("/", 1);
    puts_(months[mon]);
    puts_("/2026:");
    putu0((uint64_t)h, 2);
    put(":", 1);
    putu0((uint64_t)mi, 2);
    put(":", 1);
    putu0((uint64_t)se, 2);
    puts_(" +0000");
}

/* ---- headers ------------------------------------------------------------------ */

static int use5424;

/* Writes the syslog header; pid < 0 means none. sd: RFC 5424 SD or NULL. */
static void header(int fac, int sev, uint32_t host, const char *app, long pid, const char *msgid,
                   int sd)
{
    put("<", 1);
    putu((uint64_t)(fac * 8 + sev));
    put(">", 1);
    if (use5424) {
        puts_("1 ");
        put_ts5424();
        put(" ", 1);
        put_host(host);
        puts_(".example.net ");
        puts_(app);
        put(" ", 1);
        if (pid >= 0)
            putu((uint64_t)pid);
        else
            put("-", 1);
        put(" ", 1);
        puts_(msgid ? msgid : "-");
        put(" ", 1);
        if (sd) {
            puts_("[meta@32473 seq=\"");
            putu(rnd(1000000));
            puts_("\" region=\"");
            puts_(sites[host % 8]);
            puts_("\"] ");
        } else {
            puts_("- ");
        }
    } else {
        put_ts3164();
        put(" ", 1);
        put_host(host);
        put(" ", 1);
        puts_(app);
        if (pid >= 0) {
            put("[", 1);
            putu((uint64_t)pid);
            put("]", 1);
        }
        puts_(": ");
    }
}

/* ---- message kinds -------------------------------------------------------------- */

enum { AUTH = 4, AUTHPRIV = 10, CRON = 9, KERN = 0, MAIL = 2, DAEMON = 3, LOCAL0 = 16, LOCAL7 = 23 };

static long pid_for(uint32_t host, uint32_t salt)
{
    return 300 + (long)((host * 2654435761u + salt * 40503u) % 98000u);
}

static void sshd(uint32_t host)
{
    int kind = (int)rnd(100);
    long pid = pid_for(host, rnd(4000));
    int port = 1024 + (int)rnd(64000);
    if (kind < 30) {
        header(AUTH, 6, host, "sshd", pid, NULL, 0);
        puts_("Failed password for ");
        if (rnd(3) == 0)
            puts_("invalid user ");
        put_user();
        puts_(" from ");
        put_client_ip();
        puts_(" port ");
        putu((uint64_t)port);
        puts_(" ssh2");
    } else if (kind < 45) {
        header(AUTH, 6, host, "sshd", pid, NULL, 0);
        puts_("Accepted publickey for ");
        put_user();
        puts_(" from ");
        put_client_ip();
        puts_(" port ");
        putu((uint64_t)port);
        puts_(" ssh2: ED25519 SHA256:");
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        uint64_t k = zipf_draw(&z_small) * 0x9E3779B97F4A7C15ull;
        for (int i = 0; i < 43; i++, k = k * 6364136223846793005ull + 1442695040888963407ull)
            put(&b64[k >> 58], 1);
    } else if (kind < 60) {
        header(AUTH, 6, host, "sshd", pid, NULL, 0);
        puts_("Invalid user ");
        put_user();
        puts_(" from ");
        put_client_ip();
        puts_(" port ");
        putu((uint64_t)port);
    } else if (kind < 75) {
        header(AUTH, 6, host, "sshd", pid, NULL, 0);
        puts_("Disconnected from authenticating user ");
        put_user();
        put(" ", 1);
        put_client_ip();
        puts_(" port ");
        putu((uint64_t)port);
        puts_(" [preauth]");
    } else if (kind < 88) {
        header(AUTH, 6, host, "sshd", pid, NULL, 0);
        puts_("Connection closed by ");
        put_client_ip();
        puts_(" port ");
        putu((uint64_t)port);
        puts_(" [preauth]");
    } else {
        header(AUTHPRIV, 6, host, "sshd", pid, NULL, 0);
        puts_("pam_unix(sshd:session): session ");
        puts_(rnd(2) ? "opened" : "closed");
        puts_(" for user ");
        put_user();
        puts_("(uid=");
        putu(1000 + rnd(500));
        puts_(") by (uid=0)");
    }
}

static void sudo_(uint32_t host)
{
    if (rnd(2)) {
        header(AUTHPRIV, 5, host, "sudo", -1, NULL, 0);
        put_user();
        puts_(" : TTY=pts/");
        putu(rnd(8));
        puts_(" ; PWD=/home/");
        put_user();
        puts_(" ; USER=root ; COMMAND=");
        puts_(sudo_cmds[rnd(8)]);
    } else {
        header(AUTHPRIV, 6, host, "sudo", pid_for(host, rnd(999)), NULL, 0);
        puts_("pam_unix(sudo:session): session ");
        puts_(rnd(2) ? "opened" : "closed");
        puts_(" for user root(uid=0) by ");
        put_user();
        puts_("(uid=");
        putu(1000 + rnd(500));
        put(")", 1);
    }
}

static void cron(uint32_t host)
{
    long pid = pid_for(host, rnd(9999));
    int k = (int)rnd(3);
    if (k == 0) {
        header(CRON, 6, host, "CRON", pid, NULL, 0);
        puts_("pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)");
    } else {
        header(CRON, 6, host, "CRON", pid, NULL, 0);
        puts_("(root) CMD (");
        puts_(cron_cmds[rnd(6)]);
        put(")", 1);
    }
}

static void firewall(uint32_t host)
{
    header(KERN, 4, host, "kernel", -1, NULL, 0);
    put("[", 1);
    putu(100000 + t_us / 1000000);
    put(".", 1);
    putu0(rnd(1000000), 6);
    puts_("] ");
    int ufw = rnd(3) != 0;
    puts_(ufw ? (rnd(10) ? "[UFW BLOCK] " : "[UFW AUDIT] ") : "IPTables-Dropped: ");
    puts_("IN=eth0 OUT= MAC=52:54:00:");
    puthex(host & 0xffffff, 2);
    puts_(":ab:cd:fe:ed:fa:ce:be:ef:08:00 SRC=");
    put_ip4(ip4[zipf_draw(&z_ip4)]);
    puts_(" DST=");
    put_ip4(ip4[host]);
    puts_(" LEN=");
    putu(40 + rnd(1400));
    puts_(" TOS=0x00 PREC=0x00 TTL=");
    putu(30 + rnd(100));
    puts_(" ID=");
    putu(rnd(65536));
    int udp = rnd(5) == 0;
    puts_(udp ? " PROTO=UDP SPT=" : " DF PROTO=TCP SPT=");
    putu(1024 + rnd(64000));
    static const int ports[] = {22, 23, 80, 443, 445, 3389, 8080, 5900, 1433, 3306, 6379, 25};
    puts_(" DPT=");
    putu((uint64_t)ports[zipf_draw(&z_small) % 12]);
    if (udp) {
        puts_(" LEN=");
        putu(8 + rnd(512));
    } else {
        puts_(" WINDOW=");
        putu(1024 + rnd(64000));
        puts_(" RES=0x00 SYN URGP=0");
    }
}

static void access_log(uint32_t host)
{
    int nginx = rnd(3) != 0;
    header(LOCAL7, 6, host, nginx ? "nginx" : "apache2", nginx ? -1 : pid_for(host, 1), "access",
           rnd(4) == 0);
    put_client_ip();
    puts_(" - ");
    if (rnd(10) == 0)
        put_user();
    else
        put("-", 1);
    puts_(" [");
    put_httpdate();
    puts_("] \"");
    puts_(methods[rnd(10)]);
    put(" ", 1);
    put_path();
    puts_(" HTTP/");
    puts_(rnd(4) ? "1.1" : "2.0");
    puts_("\" ");
    putu((uint64_t)statuses[rnd(18)]);
    put(" ", 1);
    putu(rnd(4) ? rnd(60000) : rnd(3000000));
    puts_(" \"");
    if (rnd(3))
        put("-", 1);
    else {
        puts_("https://shop.example.com");
        put_path();
    }
    puts_("\" \"");
    puts_(agents[zipf_draw(&z_small) % 9]);
    put("\"", 1);
}

static void app_json(uint32_t host)
{
    const char *app = app_names[rnd(6)];
    const char *lvl = levels[rnd(7)];
    int sev = lvl[0] == 'e' ? 3 : lvl[0] == 'w' ? 4 : lvl[0] == 'd' ? 7 : 6;
    header(LOCAL0, sev, host, app, pid_for(host, 7), "app", rnd(3) == 0);
    puts_("{\"level\":\"");
    puts_(lvl);
    puts_("\",\"msg\":\"");
    puts_(app_msgs[rnd(9)]);
    puts_("\",\"trace_id\":\"");
    puthex(rnd64(), 16);
    puthex(rnd64(), 16);
    puts_("\",\"http\":{\"method\":\"");
    puts_(methods[rnd(10)]);
    puts_("\",\"path\":\"");
    put_path();
    puts_("\",\"status\":");
    putu((uint64_t)statuses[rnd(18)]);
    puts_("},\"client_ip\":\"");
    put_client_ip();
    puts_("\",\"duration_ms\":");
    putu(rnd(900));
    put(".", 1);
    putu(rnd(10));
    puts_(",\"user_id\":");
    putu(zipf_draw(&z_user));
    put("}", 1);
}

static void postfix(uint32_t host)
{
    header(MAIL, 6, host, rnd(2) ? "postfix/smtpd" : "postfix/smtp", pid_for(host, rnd(99)), NULL, 0);
    if (rnd(2)) {
        puts_("connect from unknown[");
        put_client_ip();
        put("]", 1);
    } else {
        puthex(rnd64(), 10);
        puts_(": to=<");
        put_user();
        puts_("@example.org>, relay=mx.example.org[");
        put_ip4(ip4[zipf_draw(&z_ip4)]);
        puts_("]:25, delay=");
        putu(rnd(5));
        puts_(".");
        putu(rnd(100));
        puts_(", dsn=2.0.0, status=sent (250 2.0.0 OK)");
    }
}

static void systemd(uint32_t host)
{
    static const char *const units[] = {"nginx.service", "app-worker.service", "logrotate.service",
                                        "apt-daily.service", "docker.service", "fstrim.service"};
    static const char *const what[] = {"Started ", "Stopping ", "Finished ", "Reloading "};
    header(DAEMON, 6, host, "systemd", 1, NULL, 0);
    int u = (int)rnd(6);
    puts_(what[rnd(4)]);
    puts_(units[u]);
    puts_(" - ");
    puts_(u == 0 ? "A high performance web server and a reverse proxy server"
                 : "Periodic maintenance task for the fleet");
    put(".", 1);
}

int main(int argc, char **argv)
{
    long long lines = 100000;
    uint64_t seed = 20260303;
    int pct5424 = 40;
    bool app_only = false;
    uint64_t rate = 0; /* lines per second of event time; 0: the default spacing */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--lines") == 0 && i + 1 < argc)
            lines = atoll(argv[++i]);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0);
        else if (strcmp(argv[i], "--v5424") == 0 && i + 1 < argc)
            pct5424 = atoi(argv[++i]);
        else if (strcmp(argv[i], "--hosts") == 0 && i + 1 < argc && atol(argv[i + 1]) > 0)
            n_hosts = (uint32_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc && atol(argv[i + 1]) > 0)
            rate = (uint64_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--mix") == 0 && i + 1 < argc &&
                 (strcmp(argv[i + 1], "all") == 0 || strcmp(argv[i + 1], "app") == 0))
            app_only = strcmp(argv[++i], "app") == 0;
        else {
            fprintf(stderr, "usage: gen [--lines N] [--seed S] [--v5424 PERCENT] [--hosts N] "
                            "[--mix all|app] [--rate R] > FILE\n");
            return 2;
        }
    }
    rng_state = seed;
    out_cap = 4u << 20;
    out = malloc(out_cap + 4096);
    if (!out) {
        perror("malloc");
        return 1;
    }
    pools_init();
    /* Mix in percent: sshd, sudo, cron, firewall, access, app JSON, postfix, systemd. */
    static const int weights[] = {22, 5, 6, 17, 26, 16, 5, 3};
    long long count[8] = {0};
    unsigned long long bytes = 0;
    t_us = 36000ull * 1000000; /* 10:00:00 */
    for (long long n = 0; n < lines; n++) {
        if (rate) /* uniform in [0, 2/rate) s: mean 1/rate */
            t_us += (uint64_t)rnd((uint32_t)(2000000 / rate + 1));
        else
            t_us += 100 + rnd(500);
        use5424 = (int)rnd(100) < pct5424;
        uint32_t host = zipf_draw(&z_host);
        int r = (int)rnd(100), k = 0;
        while (r >= weights[k]) {
            r -= weights[k];
            k++;
        }
        if (app_only)
            k = 5;
        count[k]++;
        switch (k) {
        case 0: sshd(host); break;
        case 1: sudo_(host); break;
        case 2: cron(host); break;
        case 3: firewall(host); break;
        case 4: access_log(host); break;
        case 5: app_json(host); break;
        case 6: postfix(host); break;
        default: systemd(host); break;
        }
        put("\n", 1);
    }
    flush_out();
    bytes = out_total;
    if (fflush(stdout) != 0) {
        perror("write");
        return 1;
    }
    fprintf(stderr,
            "gen: %lld lines, seed %llu, avg %.0f bytes; sshd %lld sudo %lld cron %lld fw %lld "
            "access %lld json %lld postfix %lld systemd %lld\n",
            lines, (unsigned long long)seed, lines ? (double)bytes / (double)lines : 0.0, count[0],
            count[1], count[2], count[3], count[4], count[5], count[6], count[7]);
    return 0;
}
