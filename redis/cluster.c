/* Redis Cluster for one loop: slot map, a command connection per master, keyed routing (see cluster.h). */
#include "cluster.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_slot.h"

/* Nodes one map may name (masters and the nodes redirections point to). */
#define MAX_NODES 256
/* Redirections one command may follow before its last reply is handed back. */
#define MAX_REDIRECTS 5
/* TRYAGAIN (a slot migrating) and CLUSTERDOWN (a failover under way): retried every tick, this many times. */
#define RETRY_EVERY_MS 100
#define MAX_RETRIES 50
/* The map is asked for at most this often, every REFRESH_WHILE_DOWN_MS while a master is unreachable (its
 * replica may be promoted), and every REFRESH_IDLE_MS anyway. */
#define REFRESH_MIN_INTERVAL_MS 100
#define REFRESH_WHILE_DOWN_MS 500
#define REFRESH_IDLE_MS 30000
#define DEFAULT_MAX_WAITING 10000

typedef struct cluster_cmd cluster_cmd_t;

/* A command until its final reply: the bytes stay the caller's. */
struct cluster_cmd {
    cluster_cmd_t *next;
    wsg_redis_cluster_t *c;
    const char *bytes;
    size_t len;
    wsg_redis_reply_cb cb;
    void *privdata;
    uint16_t slot;
    uint8_t redirects;
    uint8_t retries;
    int16_t ask_node; /* ASK redirection: the next send goes to this node, after ASKING; -1 = none */
    int16_t sent_to;  /* the node of the last send (a MOVED without host means that host) */
};

typedef struct cmd_queue {
    cluster_cmd_t *head, *tail;
    size_t count;
} cmd_queue_t;

typedef struct cluster_node {
    wsg_redis_cluster_t *c;
    int16_t index;
    wsg_redis_link_t *link; /* created once the node masters slots or a redirection points to it */
    bool is_master;         /* in the current map */
    bool is_ready;
    bool is_link_closing; /* a retired connection is closing: its callback owns the node at the close */
    cmd_queue_t waiting;  /* for this node's connection */
    uint16_t port;
    char host[256];
} cluster_node_t;

struct wsg_redis_cluster {
    uv_loop_t *loop;
    wsg_redis_addr_t addr;
    wsg_redis_link_options_t opts;
    struct observer {
        const wsg_redis_cluster_handler_t *handler;
        void *arg;
    } observers[4];
    unsigned nobservers;
    cluster_node_t *nodes[MAX_NODES];
    unsigned nnodes;
    uint16_t slot_node[WSG_CLUSTER_SLOTS]; /* node index + 1; 0 = no owner known */
    bool has_map;
    bool was_ready;            /* the last state reported */
    wsg_redis_link_t *control; /* asks for the map */
    bool is_refresh_in_flight;
    bool is_refresh_wanted;
    uint64_t last_refresh_ms;
    uv_timer_t timer;
    cmd_queue_t unrouted; /* slot without a known owner */
    cmd_queue_t retry;    /* TRYAGAIN, CLUSTERDOWN */
    size_t max_waiting, nwaiting, in_flight;
    unsigned next_node;
    char control_host[256]; /* the node the control connection was last sent to */
    bool is_closing;
    unsigned open_handles; /* the timer and every link not yet freed */
    void (*close_cb)(void *);
    void *close_arg;
    char why[700];
};

static void dispatch(wsg_redis_cluster_t *c, cluster_cmd_t *cmd);
static void schedule(wsg_redis_cluster_t *c);
static void request_refresh(wsg_redis_cluster_t *c);

/* ---- queues ---------------------------------------------------------------------------------------------
 */

static void queue_push(cmd_queue_t *q, cluster_cmd_t *cmd)
{
    cmd->next = NULL;
    if (q->tail != NULL)
        q->tail->next = cmd;
    else
        q->head = cmd;
    q->tail = cmd;
    q->count++;
}

static cmd_queue_t queue_take(cmd_queue_t *q)
{
    cmd_queue_t all = *q;
    *q = (cmd_queue_t){0};
    return all;
}

static void wait_in(wsg_redis_cluster_t *c, cmd_queue_t *q, cluster_cmd_t *cmd)
{
    queue_push(q, cmd);
    c->nwaiting++;
}

/* Hands every command of `q` to dispatch again (their owners may have changed). */
static void redispatch(wsg_redis_cluster_t *c, cmd_queue_t *q)
{
    cmd_queue_t all = queue_take(q);
    c->nwaiting -= all.count;
    for (cluster_cmd_t *cmd = all.head, *next; cmd != NULL; cmd = next) {
        next = cmd->next;
        dispatch(c, cmd);
    }
}

static void deliver(cluster_cmd_t *cmd, const redisReply *reply)
{
    wsg_redis_reply_cb cb = cmd->cb;
    void *privdata = cmd->privdata;
    free(cmd);
    if (cb != NULL)
        cb(privdata, reply);
}

/* ---- nodes ----------------------------------------------------------------------------------------------
 */

static void release_handle(wsg_redis_cluster_t *c);

/* A node's connection is closed: for good when the cluster closes (the node goes with it), or because the
 * node no longer masters slots (it stays known; a later redirection or map may connect it again). */
static void on_node_link_closed(void *arg)
{
    cluster_node_t *node = arg;
    wsg_redis_cluster_t *c = node->c;
    node->is_link_closing = false;
    if (c->is_closing)
        free(node);
    release_handle(c);
}

static bool all_masters_ready(const wsg_redis_cluster_t *c)
{
    if (!c->has_map)
        return false;
    for (unsigned i = 0; i < c->nnodes; i++)
        if (c->nodes[i]->is_master && !c->nodes[i]->is_ready)
            return false;
    return true;
}

/* Tells every observer; stops when one closed the cluster. */
#define NOTIFY(c, event, ...)                                                                                \
    do {                                                                                                     \
        for (unsigned o_ = 0; o_ < (c)->nobservers && !(c)->is_closing; o_++)                                \
            if ((c)->observers[o_].handler->event != NULL)                                                   \
                (c)->observers[o_].handler->event((c)->observers[o_].arg, ##__VA_ARGS__);                    \
    } while (0)

static void report_ready_if_so(wsg_redis_cluster_t *c)
{
    if (!c->was_ready && all_masters_ready(c)) {
        c->was_ready = true;
        NOTIFY(c, on_ready);
    }
}

static void on_node_ready(wsg_redis_link_t *link, void *arg)
{
    cluster_node_t *node = arg;
    wsg_redis_cluster_t *c = node->c;
    node->is_ready = true;
    redispatch(c, &node->waiting);
    report_ready_if_so(c);
    schedule(c);
}

static void on_node_down(wsg_redis_link_t *link, void *arg, const char *why, uint64_t retry_ms)
{
    cluster_node_t *node = arg;
    wsg_redis_cluster_t *c = node->c;
    node->is_ready = false;
    if (c->is_closing)
        return;
    if (node->is_master) {
        c->was_ready = false;
        snprintf(c->why, sizeof c->why, "node %s:%u: %s", node->host, node->port, why);
        NOTIFY(c, on_down, c->why, retry_ms);
    }
    request_refresh(c); /* a replica may take over */
}

static const wsg_redis_link_handler_t node_handler = {.on_ready = on_node_ready, .on_down = on_node_down};

static int find_node(const wsg_redis_cluster_t *c, const char *host, uint16_t port)
{
    for (unsigned i = 0; i < c->nnodes; i++)
        if (c->nodes[i]->port == port && strcmp(c->nodes[i]->host, host) == 0)
            return (int)i;
    return -1;
}

/* The node at host:port, added when new. Returns its index, or -1 (too many nodes, out of memory). */
static int node_at(wsg_redis_cluster_t *c, const char *host, size_t host_len, uint16_t port)
{
    char name[256];
    if (host_len >= sizeof name)
        return -1;
    memcpy(name, host, host_len);
    name[host_len] = '\0';
    int i = find_node(c, name, port);
    if (i >= 0 || c->nnodes == MAX_NODES)
        return i;
    cluster_node_t *node = calloc(1, sizeof(*node));
    if (node == NULL)
        return -1;
    node->c = c;
    node->index = (int16_t)c->nnodes;
    node->port = port;
    memcpy(node->host, name, host_len + 1);
    c->nodes[c->nnodes] = node;
    return (int)c->nnodes++;
}

/* Connects to `node` unless it is connected or connecting. */
static void connect_node(wsg_redis_cluster_t *c, cluster_node_t *node)
{
    if (node->link != NULL || c->is_closing)
        return;
    wsg_redis_addr_t addr = {0};
    snprintf(addr.host, sizeof addr.host, "%s", node->host);
    addr.port = node->port;
    snprintf(addr.username, sizeof addr.username, "%s", c->addr.username);
    snprintf(addr.password, sizeof addr.password, "%s", c->addr.password);
    addr.is_tls = c->addr.is_tls;
    wsg_redis_link_options_t opts = c->opts;
    opts.name = "wsgate-cmd";
    opts.select_db = false; /* a cluster has database 0 only */
    opts.is_pubsub = false;
    opts.next_target = NULL;
    node->link = wsg_redis_link_new(c->loop, &addr, &opts, &node_handler, node);
    if (node->link != NULL)
        c->open_handles++;
}

/* ---- sending --------------------------------------------------------------------------------------------
 */

static void on_reply(void *privdata, const redisReply *reply);

static bool send_to(cluster_node_t *node, cluster_cmd_t *cmd)
{
    wsg_redis_cluster_t *c = node->c;
    if (cmd->ask_node >= 0) {
        static const char asking[] = "*1\r\n$6\r\nASKING\r\n";
        if (wsg_redis_link_send(node->link, asking, sizeof asking - 1, NULL, NULL) < 0)
            return false;
        cmd->ask_node = -1; /* an ASK holds for one command */
    }
    if (wsg_redis_link_send(node->link, cmd->bytes, cmd->len, on_reply, cmd) < 0)
        return false;
    cmd->sent_to = node->index;
    c->in_flight++;
    return true;
}

static void dispatch(wsg_redis_cluster_t *c, cluster_cmd_t *cmd)
{
    if (c->is_closing) {
        deliver(cmd, NULL);
        return;
    }
    int index = cmd->ask_node >= 0 ? cmd->ask_node : (int)c->slot_node[cmd->slot] - 1;
    if (index < 0) {
        wait_in(c, &c->unrouted, cmd);
        request_refresh(c);
        return;
    }
    cluster_node_t *node = c->nodes[index];
    connect_node(c, node);
    if (node->link == NULL || !node->is_ready || !send_to(node, cmd))
        wait_in(c, &node->waiting, cmd);
}

static bool starts_with(const redisReply *reply, const char *word)
{
    size_t n = strlen(word);
    return reply->len > n && memcmp(reply->str, word, n) == 0 && reply->str[n] == ' ';
}

/* "MOVED 3999 127.0.0.1:6381" / "ASK 3999 :6381" (no host: the node that answered). Returns the node index
 * the redirection points to, or -1. */
static int redirection_target(wsg_redis_cluster_t *c, const redisReply *reply, const cluster_cmd_t *cmd)
{
    const char *sp = memchr(reply->str, ' ', reply->len);
    const char *addr = sp != NULL ? memchr(sp + 1, ' ', reply->len - (size_t)(sp + 1 - reply->str)) : NULL;
    if (addr == NULL)
        return -1;
    addr++;
    const char *end = reply->str + reply->len;
    const char *colon = NULL;
    for (const char *p = end; p > addr; p--) {
        if (p[-1] == ':') {
            colon = p - 1;
            break;
        }
    }
    if (colon == NULL)
        return -1;
    char *port_end = NULL;
    long port = strtol(colon + 1, &port_end, 10);
    if (port <= 0 || port > 65535 || port_end != end)
        return -1;
    const char *host = addr;
    size_t host_len = (size_t)(colon - addr);
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        host++;
        host_len -= 2;
    }
    if (host_len == 0 && cmd->sent_to >= 0) {
        host = c->nodes[cmd->sent_to]->host;
        host_len = strlen(host);
    }
    return node_at(c, host, host_len, (uint16_t)port);
}

static void on_reply(void *privdata, const redisReply *reply)
{
    cluster_cmd_t *cmd = privdata;
    wsg_redis_cluster_t *c = cmd->c;
    c->in_flight--;
    if (reply == NULL || reply->type != REDIS_REPLY_ERROR || c->is_closing) {
        deliver(cmd, reply);
        return;
    }
    bool is_moved = starts_with(reply, "MOVED");
    if (is_moved || starts_with(reply, "ASK")) {
        int target = ++cmd->redirects <= MAX_REDIRECTS ? redirection_target(c, reply, cmd) : -1;
        if (target < 0) {
            deliver(cmd, reply);
            return;
        }
        if (is_moved) {
            c->slot_node[cmd->slot] = (uint16_t)(target + 1);
            request_refresh(c); /* other slots have probably moved too */
        } else {
            cmd->ask_node = (int16_t)target;
        }
        dispatch(c, cmd);
        return;
    }
    if ((starts_with(reply, "TRYAGAIN") || starts_with(reply, "CLUSTERDOWN")) &&
        ++cmd->retries <= MAX_RETRIES) {
        wait_in(c, &c->retry, cmd);
        schedule(c);
        return;
    }
    deliver(cmd, reply);
}

int wsg_redis_cluster_send(wsg_redis_cluster_t *c, uint16_t slot, const char *cmd, size_t len,
                           wsg_redis_reply_cb cb, void *privdata)
{
    if (c->is_closing)
        return -ECANCELED;
    if (!c->has_map)
        return -ENOTCONN;
    if (c->nwaiting >= c->max_waiting)
        return -ENOBUFS;
    cluster_cmd_t *command = calloc(1, sizeof(*command));
    if (command == NULL)
        return -ENOMEM;
    *command = (cluster_cmd_t){.c = c,
                               .bytes = cmd,
                               .len = len,
                               .cb = cb,
                               .privdata = privdata,
                               .slot = slot % WSG_CLUSTER_SLOTS,
                               .ask_node = -1,
                               .sent_to = -1};
    dispatch(c, command);
    return 0;
}

/* ---- the map --------------------------------------------------------------------------------------------
 */

static bool is_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING;
}

/* CLUSTER SLOTS: [[start, end, [host, port, id, ...], replicas...], ...]. A host of "" or "?" is the node
 * that answered. Builds the map in `slots`; returns false on a malformed reply. */
static bool parse_slots(wsg_redis_cluster_t *c, const redisReply *reply, const char *asked_host,
                        uint16_t *slots)
{
    if (reply->type != REDIS_REPLY_ARRAY)
        return false;
    memset(slots, 0, WSG_CLUSTER_SLOTS * sizeof *slots);
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER || e->element[2]->type != REDIS_REPLY_ARRAY ||
            e->element[2]->elements < 2 || !is_str(e->element[2]->element[0]) ||
            e->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
            return false;
        long long start = e->element[0]->integer, end = e->element[1]->integer;
        long long port = e->element[2]->element[1]->integer;
        if (start < 0 || end >= WSG_CLUSTER_SLOTS || start > end || port <= 0 || port > 65535)
            return false;
        const redisReply *host = e->element[2]->element[0];
        const char *h = host->str;
        size_t h_len = host->len;
        if (h_len == 0 || (h_len == 1 && h[0] == '?')) {
            h = asked_host;
            h_len = strlen(asked_host);
        }
        int index = node_at(c, h, h_len, (uint16_t)port);
        if (index < 0)
            return false;
        for (long long s = start; s <= end; s++)
            slots[s] = (uint16_t)(index + 1);
    }
    return true;
}

static void apply_map(wsg_redis_cluster_t *c, const uint16_t *slots)
{
    bool is_changed = !c->has_map || memcmp(slots, c->slot_node, sizeof c->slot_node) != 0;
    memcpy(c->slot_node, slots, sizeof c->slot_node);
    c->has_map = true;
    bool is_master[MAX_NODES] = {false};
    for (unsigned s = 0; s < WSG_CLUSTER_SLOTS; s++)
        if (slots[s] != 0)
            is_master[slots[s] - 1] = true;
    for (unsigned i = 0; i < c->nnodes; i++) {
        cluster_node_t *node = c->nodes[i];
        node->is_master = is_master[i];
        if (node->is_master) {
            connect_node(c, node);
            continue;
        }
        redispatch(c, &node->waiting); /* to the new owners */
        if (node->link != NULL && node->waiting.count == 0) {
            /* A former master (failed over, or emptied): stop reconnecting to it. Answers still due on it
             * come first (a closing link waits for them). */
            wsg_redis_link_close(node->link, on_node_link_closed, node);
            node->link = NULL;
            node->is_ready = false;
            node->is_link_closing = true;
        }
    }
    redispatch(c, &c->unrouted);
    if (is_changed)
        NOTIFY(c, on_map);
    if (!all_masters_ready(c))
        c->was_ready = false;
    report_ready_if_so(c);
}

static void on_slots(void *privdata, const redisReply *reply)
{
    wsg_redis_cluster_t *c = privdata;
    c->is_refresh_in_flight = false;
    if (reply == NULL || c->is_closing)
        return; /* the control connection's loss is retried by it */
    uint16_t *slots = malloc(WSG_CLUSTER_SLOTS * sizeof *slots);
    if (slots != NULL && reply->type != REDIS_REPLY_ERROR && parse_slots(c, reply, c->control_host, slots))
        apply_map(c, slots);
    else
        c->is_refresh_wanted = true;
    free(slots);
    schedule(c);
}

static void send_refresh(wsg_redis_cluster_t *c)
{
    static const char slots_cmd[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
    if (c->is_refresh_in_flight || !wsg_redis_link_is_ready(c->control))
        return;
    if (wsg_redis_link_send(c->control, slots_cmd, sizeof slots_cmd - 1, on_slots, c) == 0) {
        c->is_refresh_in_flight = true;
        c->is_refresh_wanted = false;
        c->last_refresh_ms = uv_now(c->loop);
    }
}

static void request_refresh(wsg_redis_cluster_t *c)
{
    c->is_refresh_wanted = true;
    schedule(c);
}

void wsg_redis_cluster_refresh(wsg_redis_cluster_t *c)
{
    if (!c->is_closing)
        request_refresh(c);
}

static void on_control_ready(wsg_redis_link_t *link, void *arg)
{
    wsg_redis_cluster_t *c = arg;
    c->is_refresh_in_flight = false;
    send_refresh(c);
}

static void on_control_down(wsg_redis_link_t *link, void *arg, const char *why, uint64_t retry_ms)
{
    wsg_redis_cluster_t *c = arg;
    c->is_refresh_in_flight = false;
    c->is_refresh_wanted = true;
    if (!c->has_map && !c->is_closing) {
        snprintf(c->why, sizeof c->why, "no cluster node answers: %s", why);
        NOTIFY(c, on_down, c->why, retry_ms);
    }
}

static const wsg_redis_link_handler_t control_handler = {.on_ready = on_control_ready,
                                                         .on_down = on_control_down};

static void control_next_target(void *arg, char *host, size_t host_cap, uint16_t *port)
{
    wsg_redis_cluster_t *c = arg;
    wsg_redis_cluster_next_node(c, host, host_cap, port);
    snprintf(c->control_host, sizeof c->control_host, "%s", host);
}

/* ---- the timer: retries and refreshes -------------------------------------------------------------------
 */

static void on_tick(uv_timer_t *timer)
{
    wsg_redis_cluster_t *c = timer->data;
    if (c->is_closing) {
        /* Commands still waiting (all gathered in `unrouted` by the close) hear of it from the loop. */
        cmd_queue_t lists[2] = {queue_take(&c->unrouted), queue_take(&c->retry)};
        for (int l = 0; l < 2; l++)
            for (cluster_cmd_t *cmd = lists[l].head, *next; cmd != NULL; cmd = next) {
                next = cmd->next;
                deliver(cmd, NULL);
            }
        c->nwaiting = 0;
        return;
    }
    redispatch(c, &c->retry);
    uint64_t now = uv_now(c->loop);
    uint64_t since = now - c->last_refresh_ms;
    bool is_due = since >= REFRESH_IDLE_MS || (!all_masters_ready(c) && since >= REFRESH_WHILE_DOWN_MS);
    if ((c->is_refresh_wanted && since >= REFRESH_MIN_INTERVAL_MS) || is_due)
        send_refresh(c);
    schedule(c);
}

static void schedule(wsg_redis_cluster_t *c)
{
    if (c->is_closing)
        return;
    uint64_t delay = c->retry.count > 0 || c->is_refresh_wanted ? RETRY_EVERY_MS
                     : !all_masters_ready(c)                    ? REFRESH_WHILE_DOWN_MS
                                                                : REFRESH_IDLE_MS;
    uint64_t due = uv_timer_get_due_in(&c->timer);
    if (uv_is_active((uv_handle_t *)&c->timer) && due <= delay)
        return;
    uv_timer_start(&c->timer, on_tick, delay, 0);
}

/* ---- lifecycle ------------------------------------------------------------------------------------------
 */

wsg_redis_cluster_t *wsg_redis_cluster_new(uv_loop_t *loop, const wsg_redis_addr_t *addr,
                                           const wsg_redis_link_options_t *opts)
{
    wsg_redis_cluster_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->loop = loop;
    c->addr = *addr;
    c->opts = *opts;
    c->max_waiting = DEFAULT_MAX_WAITING;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
    wsg_redis_link_options_t control = *opts;
    control.name = "wsgate-cluster";
    control.select_db = false;
    control.is_pubsub = false;
    control.next_target = control_next_target;
    control.target_arg = c;
    wsg_redis_addr_t any = *addr;
    any.is_sentinel = false;
    c->control = wsg_redis_link_new(loop, &any, &control, &control_handler, c);
    if (c->control == NULL) {
        uv_close((uv_handle_t *)&c->timer, NULL);
        free(c);
        return NULL;
    }
    c->open_handles++;
    return c;
}

int wsg_redis_cluster_observe(wsg_redis_cluster_t *c, const wsg_redis_cluster_handler_t *handler, void *arg)
{
    if (c->nobservers == sizeof c->observers / sizeof c->observers[0])
        return -ENOSPC;
    c->observers[c->nobservers++] = (struct observer){handler, arg};
    return 0;
}

const wsg_redis_addr_t *wsg_redis_cluster_addr(const wsg_redis_cluster_t *c)
{
    return &c->addr;
}

bool wsg_redis_cluster_has_map(const wsg_redis_cluster_t *c)
{
    return c->has_map;
}

bool wsg_redis_cluster_is_ready(const wsg_redis_cluster_t *c)
{
    return all_masters_ready(c);
}

size_t wsg_redis_cluster_pending(const wsg_redis_cluster_t *c)
{
    return c->nwaiting + c->in_flight;
}

void wsg_redis_cluster_set_max_waiting(wsg_redis_cluster_t *c, size_t max_waiting)
{
    c->max_waiting = max_waiting ? max_waiting : DEFAULT_MAX_WAITING;
}

bool wsg_redis_cluster_is_master(const wsg_redis_cluster_t *c, const char *host, uint16_t port)
{
    int i = find_node(c, host, port);
    return i >= 0 && c->nodes[i]->is_master;
}

bool wsg_redis_cluster_master_of(const wsg_redis_cluster_t *c, uint16_t slot, char *host, size_t host_cap,
                                 uint16_t *port)
{
    int index = c->has_map ? (int)c->slot_node[slot % WSG_CLUSTER_SLOTS] - 1 : -1;
    if (index < 0)
        return false;
    snprintf(host, host_cap, "%s", c->nodes[index]->host);
    *port = c->nodes[index]->port;
    return true;
}

void wsg_redis_cluster_next_node(wsg_redis_cluster_t *c, char *host, size_t host_cap, uint16_t *port)
{
    unsigned n = (unsigned)c->addr.nseeds + c->nnodes;
    unsigned i = n > 0 ? c->next_node++ % n : 0;
    if (i < c->addr.nseeds) {
        snprintf(host, host_cap, "%s", c->addr.seeds[i].host);
        *port = c->addr.seeds[i].port;
    } else if (c->nnodes > 0) {
        snprintf(host, host_cap, "%s", c->nodes[i - c->addr.nseeds]->host);
        *port = c->nodes[i - c->addr.nseeds]->port;
    } else {
        snprintf(host, host_cap, "%s", c->addr.host);
        *port = c->addr.port;
    }
}

void wsg_redis_cluster_reset_all(wsg_redis_cluster_t *c, const char *why)
{
    for (unsigned i = 0; i < c->nnodes; i++)
        if (c->nodes[i]->is_master && c->nodes[i]->link != NULL)
            wsg_redis_link_reset(c->nodes[i]->link, why);
    request_refresh(c);
}

void wsg_redis_cluster_reset_slot(wsg_redis_cluster_t *c, uint16_t slot, const char *why)
{
    int index = c->has_map ? (int)c->slot_node[slot % WSG_CLUSTER_SLOTS] - 1 : -1;
    if (index >= 0 && c->nodes[index]->link != NULL)
        wsg_redis_link_reset(c->nodes[index]->link, why);
    request_refresh(c);
}

static void release_handle(wsg_redis_cluster_t *c)
{
    if (--c->open_handles > 0)
        return;
    void (*cb)(void *) = c->close_cb;
    void *cb_arg = c->close_arg;
    free(c);
    if (cb != NULL)
        cb(cb_arg);
}

static void on_control_closed(void *arg)
{
    release_handle(arg);
}

static void on_timer_closed(uv_handle_t *handle)
{
    release_handle(handle->data);
}

static void on_close_tick(uv_timer_t *timer)
{
    on_tick(timer); /* hands the waiting commands NULL */
    uv_close((uv_handle_t *)timer, on_timer_closed);
}

void wsg_redis_cluster_close(wsg_redis_cluster_t *c, void (*cb)(void *cb_arg), void *cb_arg)
{
    if (c->is_closing)
        return;
    c->is_closing = true;
    c->close_cb = cb;
    c->close_arg = cb_arg;
    wsg_redis_link_close(c->control, on_control_closed, c);
    for (unsigned i = 0; i < c->nnodes; i++) {
        cluster_node_t *node = c->nodes[i];
        cmd_queue_t q = queue_take(&node->waiting);
        for (cluster_cmd_t *cmd = q.head, *next; cmd != NULL; cmd = next) {
            next = cmd->next;
            queue_push(&c->unrouted, cmd); /* failed by the close tick */
        }
        c->nodes[i] = NULL;
        if (node->link != NULL)
            wsg_redis_link_close(node->link, on_node_link_closed, node); /* frees the node once closed */
        else if (!node->is_link_closing)
            free(node);
    }
    c->nnodes = 0;
    uv_timer_start(&c->timer, on_close_tick, 0, 0);
}
