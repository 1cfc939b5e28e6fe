/* `wsgate publish`: ws4redis's RedisPublisher(...).publish_message(...) from the command line. */
#ifndef WSG_GATEWAY_PUBLISH_CLI_H
#define WSG_GATEWAY_PUBLISH_CLI_H

/** Runs the subcommand: `argv[0]` is "publish", the options and the message (or "-" for stdin) follow.
 *  For each selected channel (broadcast, then groups, users, sessions, in the order given) it sends
 *  PUBLISH, then SETEX when the expiry is above 0, and prints "channel=<name> receivers=<n>" to stdout; a
 *  channel with no receiver gets a warning on stderr. Settings default to REDIS_URL, WS4REDIS_PREFIX and
 *  WS4REDIS_EXPIRE; flags win. Blocks; no event loop. Borrows `argv`. Returns the process exit status:
 *  0 done (also for --help, and when nobody received the message), 1 a Redis or I/O error (stops at the
 *  first one; the reason goes to stderr), 2 a usage error (the reason and a hint to stderr; a
 *  redis-sentinel:// URL is one), 3 done but some channel had no receiver (only with --require-receivers). */
int wsg_publish_cli_main(int argc, char **argv);

#endif
