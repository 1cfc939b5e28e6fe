/* Files served on the WebSocket port: the browser client and the demo page, embedded at build time. */
#ifndef WSG_GATEWAY_STATIC_FILES_H
#define WSG_GATEWAY_STATIC_FILES_H

#include <stddef.h>

typedef struct wsg_static_file {
    const char *name;         /**< "wsgate.js", "demo.html" */
    const char *content_type;
    const unsigned char *data;
    size_t len;
} wsg_static_file_t;

/** Every embedded file, ended by an entry whose name is NULL. */
extern const wsg_static_file_t wsg_static_files[];

#endif
