/*
 * A real nginx for tests, on 127.0.0.1: a throwaway CA and a server
 * certificate (SAN IP:127.0.0.1) made with the openssl command, nginx.conf
 * with `daemon off;`, `master_process off;` and every path (pid, logs, temp
 * dirs) in a temporary directory, run as a child that dies with the test.
 * Also loopback helpers, tests/tools/cut-proxy ($HEALER_CUT_PROXY) and
 * tests/tools/slow-http ($HEALER_SLOW_HTTP).
 */
#pragma once

#include <glib.h>

typedef struct {
	char *dir;        /* temporary: certificates, nginx.conf, logs */
	char *www;        /* the document root */
	char *ca_file;    /* the CA (PEM) that signed the server's certificate */
	char *access_log; /* one line a request, see nginx_server_requests() */
	char *error_log;
	char *extra; /* more directives inside the server block, or NULL; may be set until started */
	GPid pid;    /* 0: not running */
	int tls_port;
	int plain_port;
} NginxServer;

/* One line of the access log. */
typedef struct {
	char *method;
	char *uri; /* as requested: "/2.1.0/system-part2.bin" */
	guint status;
	guint64 body_bytes;
	char *range; /* the Range header, or NULL */
} NginxRequest;

/* nginx (from $HEALER_NGINX, the PATH or /usr/sbin) and openssl are installed; a test without them skips. */
gboolean nginx_server_available(void);

/*
 * A new temporary directory with the CA and the server certificate.  `www`:
 * the document root (NULL: DIR/www, made empty); `extra`: directives for the
 * server block (locations), or NULL.  Not started.
 */
NginxServer *nginx_server_new(const char *www, const char *extra);
/* One more CA in the server's directory, which signed nothing: its PEM's path. */
char *nginx_server_make_ca(NginxServer *s, const char *name);
/*
 * Starts nginx: TLS on `tls_port` (0: a free port) and plain HTTP on a free
 * port, both on 127.0.0.1; returns once it accepts on both.  Fails the test
 * when it cannot start.
 */
void nginx_server_start(NginxServer *s, int tls_port);
/* SIGTERM and wait; a no-op when not running.  The directory stays: it may start again. */
void nginx_server_stop(NginxServer *s);
/* Stops it and removes its directory (not a `www` given to nginx_server_new). */
void nginx_server_free(NginxServer *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NginxServer, nginx_server_free)

/* https://127.0.0.1:TLS_PORT/path */
char *nginx_server_url(const NginxServer *s, const char *path);
/* The access log so far, oldest first (NginxRequest *). */
GPtrArray *nginx_server_requests(const NginxServer *s);

/* ---- loopback helpers ---- */

/* A port of 127.0.0.1 nothing listens on (bound, then closed). */
int test_free_port(void);
/* A connection to 127.0.0.1:port succeeds. */
gboolean test_port_accepts(int port);
/* A loopback socket that listens and never accepts; its port in *port_out. */
int test_blackhole_listen(int *port_out);

/*
 * tests/tools/cut-proxy in front of 127.0.0.1:target_port: its first
 * `cut_connections` connections are closed after `cut_after` bytes from the
 * server.  Its port in *port_out; stop it with test_child_stop().
 */
GPid test_cut_proxy_start(int target_port, int cut_connections, long cut_after, int *port_out);
/*
 * tests/tools/slow-http ($HEALER_SLOW_HTTP) on 127.0.0.1: every request gets "200 OK" with
 * Content-Length body_bytes at once, then the body at bytes_per_second.  Its port in *port_out;
 * stop it with test_child_stop().  For TLS, put nginx in front:
 *   location /slow/ { proxy_pass http://127.0.0.1:PORT; proxy_buffering off; }
 */
GPid test_slow_http_start(guint bytes_per_second, guint64 body_bytes, int *port_out);
/* SIGTERM and wait. */
void test_child_stop(GPid pid);
