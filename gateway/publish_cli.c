/* `wsgate publish`: argument parsing, validation and output; the Redis side is redis/publisher.c. */
#include "publish_cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "channel.h"
#include "glob_match.h"
#include "publisher.h"
#include "redis_url.h"
#include "units.h"
#include "url.h"
#include "utf8.h"

enum { STATUS_OK = 0, STATUS_FAILED = 1, STATUS_USAGE = 2, STATUS_NO_RECEIVER = 3 };

/* Bounds: a message read from stdin; the prefix as the gateway's WS4REDIS_PREFIX (char[256]). */
#define STDIN_MAX ((size_t)64 << 20)
#define PREFIX_MAX 255
#define CONNECT_TIMEOUT_MS 2000

typedef struct target {
    wsg_audience_t audience;
    const char *ident; /* borrowed from argv; NULL for broadcast */
} target_t;

typedef struct options {
    const char *facility; /* NULL until --facility is seen */
    bool is_broadcast;
    target_t *targets; /* --user/--group/--session in command-line order, capacity argc */
    size_t n_targets;
    bool is_receiver_required; /* --require-receivers: a channel nobody received on is exit status 3 */
    const char *expire;
    const char *redis_url;
    const char *prefix;
    const char *message; /* the positional argument; "-" = stdin */
} options_t;

static void print_usage(FILE *out)
{
    fputs("Usage: wsgate publish --facility F [--broadcast] [--user U]... [--group G]... [--session S]...\n"
          "                      [--expire SECONDS] [--redis-url URL] [--prefix P] [--require-receivers]\n"
          "                      MESSAGE|-\n"
          "       wsgate publish --help\n",
          out);
}

static void print_help(void)
{
    print_usage(stdout);
    fputs("\nPublishes MESSAGE as ws4redis's RedisPublisher(facility=F, broadcast=..., users=[...],\n"
          "groups=[...], sessions=[...]).publish_message(RedisMessage(MESSAGE), expire) does: for each\n"
          "selected channel, PUBLISH <channel> MESSAGE, then SETEX <channel> <expire> MESSAGE when\n"
          "expire > 0. Channels: broadcast:F, group:G:F, user:U:F, session:S:F, each with \"<prefix>:\"\n"
          "in front when a prefix is set. At least one of --broadcast, --user, --group, --session is\n"
          "required; --user, --group and --session may be repeated. MESSAGE \"-\" reads the message\n"
          "from stdin, byte for byte (at most 64 MiB); put \"--\" before a message that starts with '-'.\n\n"
          "  --facility F      the facility: at most 256 bytes of UTF-8, no control characters\n"
          "  --broadcast       publish to broadcast:F\n"
          "  --user U          publish to user:U:F (U: 1-256 bytes of UTF-8, no ':', no control chars)\n"
          "  --group G         publish to group:G:F (same rules)\n"
          "  --session S       publish to session:S:F (same rules)\n"
          "  --expire SECONDS  SETEX expiry, 0 = publish only (default: WS4REDIS_EXPIRE, else 3600)\n"
          "  --redis-url URL   redis://[[user]:password@]host:port/db, rediss://... (TLS),\n"
          "                    unix:///path[?db=N] or redis-sentinel://host:26379,.../master[/db]\n"
          "                    (rediss-sentinel:// over TLS); default: REDIS_URL, else\n"
          "                    redis://127.0.0.1:6379/0. TLS uses WSGATE_REDIS_TLS_CA, _CERT, _KEY, _SNI\n"
          "                    and _VERIFY from the environment, as the gateway does\n"
          "  --prefix P        channel and key prefix (default: WS4REDIS_PREFIX, else none)\n"
          "  --require-receivers  exit status 3 when a channel had no receiver\n\n"
          "Prints \"channel=<name> receivers=<n>\" per channel (n: subscribers that got it). A channel\n"
          "with no receiver (no client is connected to it) gets a warning on stderr; the message is\n"
          "still published to every channel and stored as usual, so clients that connect later get it.\n"
          "A channel that WSGATE_STREAMS names is a stream channel: the message is added to its stream\n"
          "(XADD <channel> MAXLEN ~ WSGATE_STREAM_MAXLEN * payload MESSAGE, default 1000) and the line\n"
          "is \"channel=<name> id=<entry id>\".\n"
          "Exit status: 0 published (also when nobody received it), 1 Redis error (connect timeout\n"
          "2 s), 2 usage error, 3 published but a channel had no receiver (only with\n"
          "--require-receivers).\n",
          stdout);
}

/* Reports a usage error with the synopsis; always returns STATUS_USAGE. */
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    fputs("wsgate publish: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    print_usage(stderr);
    return STATUS_USAGE;
}

/* NULL when `f` is an acceptable facility (the gateway's rules for the URL path), else the reason. */
static const char *facility_problem(const char *f)
{
    size_t len = strlen(f);
    if (len > WSG_FACILITY_MAX)
        return "longer than 256 bytes";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)f[i];
        if (c < 0x20 || c == 0x7f)
            return "has control characters";
    }
    if (!wsg_utf8_is_valid((const uint8_t *)f, len))
        return "is not valid UTF-8";
    return NULL;
}

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* The value of option `name` at argv[*i]: after '=' in the same argument, or the next argument. NULL when
 * the option does not match or has no value (*missing is then set). */
static const char *option_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    const char *arg = argv[*i] + 2;
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return NULL;
    if (arg[n] == '=')
        return arg + n + 1;
    if (arg[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* Fills `o` from argv; returns STATUS_OK or STATUS_USAGE (reported). */
static int parse_args(int argc, char **argv, options_t *o)
{
    bool is_options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (is_options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (o->message != NULL)
                return usage_error("more than one message (\"%s\"); quote the message", arg);
            o->message = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            is_options_done = true;
            continue;
        }
        if (strcmp(arg, "--broadcast") == 0) {
            o->is_broadcast = true;
            continue;
        }
        if (strcmp(arg, "--require-receivers") == 0) {
            o->is_receiver_required = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0)
            return usage_error("unknown option \"%s\"", arg);
        static const struct {
            const char *name;
            wsg_audience_t audience;
        } idents[] = {
            {"user", WSG_AUDIENCE_USER}, {"group", WSG_AUDIENCE_GROUP}, {"session", WSG_AUDIENCE_SESSION}};
        bool missing = false;
        bool is_known = false;
        const char *v;
        for (size_t k = 0; k < sizeof idents / sizeof idents[0] && !is_known && !missing; k++) {
            if ((v = option_value(argc, argv, &i, idents[k].name, &missing)) != NULL) {
                if (!wsg_channel_ident_is_valid(wsg_str_c(v)))
                    return usage_error("bad identity \"%s\" (1 to 256 bytes of UTF-8 without ':' or control "
                                       "characters)",
                                       v);
                o->targets[o->n_targets++] = (target_t){idents[k].audience, v};
                is_known = true;
            }
        }
        if (!is_known && !missing && (v = option_value(argc, argv, &i, "facility", &missing)) != NULL) {
            o->facility = v;
            is_known = true;
        }
        if (!is_known && !missing && (v = option_value(argc, argv, &i, "expire", &missing)) != NULL) {
            o->expire = v;
            is_known = true;
        }
        if (!is_known && !missing && (v = option_value(argc, argv, &i, "redis-url", &missing)) != NULL) {
            o->redis_url = v;
            is_known = true;
        }
        if (!is_known && !missing && (v = option_value(argc, argv, &i, "prefix", &missing)) != NULL) {
            o->prefix = v;
            is_known = true;
        }
        if (missing)
            return usage_error("option %s needs a value", arg);
        if (!is_known)
            return usage_error("unknown option \"%s\"", arg);
    }
    return STATUS_OK;
}

/* Reads all of stdin into a new buffer (*out, freed by the caller). Returns 0, -EMSGSIZE past STDIN_MAX,
 * -ENOMEM or a negative errno from read(). */
static int read_stdin(char **out, size_t *out_len)
{
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    for (;;) {
        if (len == cap) {
            if (cap > STDIN_MAX) {
                free(buf);
                return -EMSGSIZE;
            }
            /* One byte past the bound tells "exactly 64 MiB" from "more". */
            size_t ncap = cap * 2 > STDIN_MAX + 1 ? STDIN_MAX + 1 : cap * 2;
            char *nbuf = realloc(buf, ncap);
            if (nbuf == NULL) {
                free(buf);
                return -ENOMEM;
            }
            buf = nbuf;
            cap = ncap;
        }
        ssize_t n = read(STDIN_FILENO, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > STDIN_MAX) {
        free(buf);
        return -EMSGSIZE;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

/* Publishes to every channel of `o`; returns the exit status. */
static int publish_all(const options_t *o, wsg_redis_addr_t *addr, uint64_t expire_s, const char *msg,
                       size_t msg_len)
{
    char err[512];
    /* TLS and sentinel credentials come from the gateway's environment variables. */
    if (getenv("WSGATE_REDIS_SENTINEL_PASSWORD") != NULL) {
        snprintf(addr->sentinel_password, sizeof addr->sentinel_password, "%s",
                 getenv("WSGATE_REDIS_SENTINEL_PASSWORD"));
        snprintf(addr->sentinel_username, sizeof addr->sentinel_username, "%s",
                 getenv("WSGATE_REDIS_SENTINEL_USERNAME") ? getenv("WSGATE_REDIS_SENTINEL_USERNAME") : "");
    }
    const char *verify = getenv("WSGATE_REDIS_TLS_VERIFY");
    wsg_tls_options_t tls = {
        .ca_file = getenv("WSGATE_REDIS_TLS_CA"),
        .cert_file = getenv("WSGATE_REDIS_TLS_CERT"),
        .key_file = getenv("WSGATE_REDIS_TLS_KEY"),
        .skip_verify = verify != NULL && (strcmp(verify, "0") == 0 || strcasecmp(verify, "false") == 0 ||
                                          strcasecmp(verify, "no") == 0 || strcasecmp(verify, "off") == 0),
    };
    const char *sharded = getenv("WSGATE_REDIS_SHARDED");
    bool is_sharded = sharded != NULL && (strcmp(sharded, "1") == 0 || strcasecmp(sharded, "true") == 0 ||
                                          strcasecmp(sharded, "yes") == 0 || strcasecmp(sharded, "on") == 0);
    wsg_publisher_t *pub = wsg_publisher_connect(addr, &tls, getenv("WSGATE_REDIS_TLS_SNI"), is_sharded,
                                                 CONNECT_TIMEOUT_MS, err, sizeof err);
    if (pub == NULL) {
        fprintf(stderr, "wsgate publish: %s\n", err);
        return STATUS_FAILED;
    }
    int status = STATUS_OK;
    bool is_unreceived = false;
    const char *stream_patterns = getenv("WSGATE_STREAMS") ? getenv("WSGATE_STREAMS") : "";
    uint64_t stream_maxlen = 1000;
    const char *maxlen_text = getenv("WSGATE_STREAM_MAXLEN");
    if (maxlen_text != NULL && wsg_parse_uint(maxlen_text, 0, 1000000000, &stream_maxlen) < 0) {
        fprintf(stderr, "wsgate publish: WSGATE_STREAM_MAXLEN: bad value \"%s\" (expected a whole number)\n",
                maxlen_text);
        wsg_publisher_free(pub);
        return STATUS_USAGE;
    }
    /* ws4redis's order: broadcast, then groups, users and sessions, each in the order given. */
    static const wsg_audience_t order[] = {WSG_AUDIENCE_BROADCAST, WSG_AUDIENCE_GROUP, WSG_AUDIENCE_USER,
                                           WSG_AUDIENCE_SESSION};
    for (size_t a = 0; a < sizeof order / sizeof order[0] && status == STATUS_OK; a++) {
        size_t n = order[a] == WSG_AUDIENCE_BROADCAST ? (o->is_broadcast ? 1 : 0) : o->n_targets;
        for (size_t t = 0; t < n && status == STATUS_OK; t++) {
            const char *ident = NULL;
            if (order[a] != WSG_AUDIENCE_BROADCAST) {
                if (o->targets[t].audience != order[a])
                    continue;
                ident = o->targets[t].ident;
            }
            char channel[1024];
            ssize_t clen = wsg_channel_name(channel, sizeof channel, wsg_str_c(o->prefix), order[a],
                                            wsg_str_c(ident), wsg_str_c(o->facility));
            if (clen < 0) { /* cannot happen within the bounds checked above */
                fprintf(stderr, "wsgate publish: channel name too long\n");
                status = STATUS_FAILED;
                break;
            }
            if (stream_patterns[0] != '\0' &&
                wsg_glob_list_match(stream_patterns, strlen(stream_patterns), channel, (size_t)clen)) {
                /* A stream channel (WSGATE_STREAMS): the message is an entry of its stream. */
                char id[64];
                if (wsg_publisher_xadd(pub, channel, (size_t)clen, msg, msg_len, stream_maxlen, id, sizeof id,
                                       err, sizeof err) < 0) {
                    fprintf(stderr, "wsgate publish: %s: %s\n", channel, err);
                    status = STATUS_FAILED;
                    break;
                }
                printf("channel=%s id=%s\n", channel, id);
                continue;
            }
            long long receivers = 0;
            if (wsg_publisher_publish(pub, channel, (size_t)clen, msg, msg_len, expire_s, &receivers, err,
                                      sizeof err) < 0) {
                fprintf(stderr, "wsgate publish: %s: %s\n", channel, err);
                status = STATUS_FAILED;
                break;
            }
            printf("channel=%s receivers=%lld\n", channel, receivers);
            if (receivers == 0) {
                /* Not an error for ws4redis's publishers (the stored copy reaches later clients), but a
                 * script author wants to know that nobody was listening. */
                fflush(stdout);
                if (expire_s > 0)
                    fprintf(stderr,
                            "wsgate publish: warning: no client received the message on %s (stored for "
                            "%llu s: clients that connect within that time get it)\n",
                            channel, (unsigned long long)expire_s);
                else
                    fprintf(stderr,
                            "wsgate publish: warning: no client received the message on %s (not stored: "
                            "expire is 0)\n",
                            channel);
                if (o->is_receiver_required)
                    is_unreceived = true;
            }
        }
    }
    wsg_publisher_free(pub);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "wsgate publish: writing to stdout: %s\n", strerror(errno));
        status = STATUS_FAILED;
    }
    if (status == STATUS_OK && is_unreceived)
        status = STATUS_NO_RECEIVER;
    return status;
}

int wsg_publish_cli_main(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (is_help(argv[i])) {
            print_help();
            return STATUS_OK;
        }
    }
    /* A Redis connection reset while writing must be an error reply, not a silent death. */
    signal(SIGPIPE, SIG_IGN);

    options_t o = {0};
    o.targets = calloc((size_t)argc, sizeof *o.targets);
    if (o.targets == NULL) {
        fprintf(stderr, "wsgate publish: out of memory\n");
        return STATUS_FAILED;
    }
    char *stdin_msg = NULL;
    int status = parse_args(argc, argv, &o);
    if (status != STATUS_OK)
        goto Exit;

    /* Defaults from the gateway's environment variables; flags win. */
    const char *source_url = o.redis_url ? "--redis-url" : "REDIS_URL";
    const char *source_expire = o.expire ? "--expire" : "WS4REDIS_EXPIRE";
    const char *source_prefix = o.prefix ? "--prefix" : "WS4REDIS_PREFIX";
    if (o.redis_url == NULL)
        o.redis_url = getenv("REDIS_URL") ? getenv("REDIS_URL") : "redis://127.0.0.1:6379/0";
    if (o.expire == NULL)
        o.expire = getenv("WS4REDIS_EXPIRE") ? getenv("WS4REDIS_EXPIRE") : "3600";
    if (o.prefix == NULL)
        o.prefix = getenv("WS4REDIS_PREFIX") ? getenv("WS4REDIS_PREFIX") : "";

    status = STATUS_USAGE;
    const char *why = NULL;
    if (o.facility == NULL) {
        usage_error("--facility is required");
        goto Exit;
    }
    if ((why = facility_problem(o.facility)) != NULL) {
        usage_error("--facility %s", why);
        goto Exit;
    }
    if (!o.is_broadcast && o.n_targets == 0) {
        usage_error("no audience: give --broadcast, --user, --group or --session");
        goto Exit;
    }
    if (o.message == NULL) {
        usage_error("no message given (use \"-\" to read it from stdin)");
        goto Exit;
    }
    uint64_t expire_s;
    if (wsg_parse_uint(o.expire, 0, 0xffffffffu, &expire_s) < 0) {
        usage_error("%s: bad value \"%s\" (expected seconds, 0 to 4294967295)", source_expire, o.expire);
        goto Exit;
    }
    if (strlen(o.prefix) > PREFIX_MAX) {
        usage_error("%s: value too long (at most %d bytes)", source_prefix, PREFIX_MAX);
        goto Exit;
    }
    wsg_redis_addr_t addr;
    if (wsg_redis_url_parse(o.redis_url, &addr, &why) < 0) {
        usage_error("%s: %s", source_url, why ? why : "bad URL");
        goto Exit;
    }

    const char *msg = o.message;
    size_t msg_len = strlen(o.message);
    if (strcmp(o.message, "-") == 0) {
        int rc = read_stdin(&stdin_msg, &msg_len);
        if (rc == -EMSGSIZE) {
            fprintf(stderr, "wsgate publish: the message on stdin is larger than 64 MiB\n");
            goto Exit;
        }
        if (rc < 0) {
            fprintf(stderr, "wsgate publish: reading stdin: %s\n", strerror(-rc));
            status = STATUS_FAILED;
            goto Exit;
        }
        msg = stdin_msg;
    }
    status = publish_all(&o, &addr, expire_s, msg, msg_len);

Exit:
    free(stdin_msg);
    free(o.targets);
    return status;
}
