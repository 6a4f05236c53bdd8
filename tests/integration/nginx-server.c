/* A real nginx for tests over TLS with a throwaway CA; loopback helpers; cut-proxy. */
#include "nginx-server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-util.h"

/* ---- loopback helpers ---- */

static int
loopback_socket(struct sockaddr_in *addr, int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	g_assert_cmpint(fd, >=, 0);
	*addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return fd;
}

static int
bound_port(int fd)
{
	struct sockaddr_in addr;
	socklen_t len = sizeof addr;

	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&addr, &len), ==, 0);
	return ntohs(addr.sin_port);
}

int
test_free_port(void)
{
	struct sockaddr_in addr;
	int fd = loopback_socket(&addr, 0);
	int port;

	g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof addr), ==, 0);
	port = bound_port(fd);
	close(fd);
	return port;
}

int
test_blackhole_listen(int *port_out)
{
	struct sockaddr_in addr;
	int fd = loopback_socket(&addr, 0);

	g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof addr), ==, 0);
	g_assert_cmpint(listen(fd, 16), ==, 0);
	*port_out = bound_port(fd);
	return fd;
}

gboolean
test_port_accepts(int port)
{
	struct sockaddr_in addr;
	int fd = loopback_socket(&addr, port);
	gboolean ok = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;

	close(fd);
	return ok;
}

void
test_child_stop(GPid pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* Starts a tool that prints the port it listens on and a newline once ready. */
static GPid
start_listening_tool(const char *const *argv, int *port_out)
{
	g_autoptr(GError) error = NULL;
	char line[32];
	int out = -1;
	gsize len = 0;
	GPid pid;

	g_spawn_async_with_pipes(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, test_die_with_parent, NULL, &pid,
	                         NULL, &out, NULL, &error);
	g_assert_no_error(error);
	/* It prints its port and a newline when it listens. */
	while (len < sizeof line - 1) {
		ssize_t r = read(out, line + len, 1);
		if (r < 0 && errno == EINTR)
			continue;
		g_assert_cmpint(r, ==, 1);
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	close(out);
	*port_out = atoi(line);
	g_assert_cmpint(*port_out, >, 0);
	return pid;
}

GPid
test_cut_proxy_start(int target_port, int cut_connections, long cut_after, int *port_out)
{
	g_autofree char *target = g_strdup_printf("%d", target_port);
	g_autofree char *n = g_strdup_printf("%d", cut_connections);
	g_autofree char *x = g_strdup_printf("%ld", cut_after);
	const char *argv[] = {test_program("HEALER_CUT_PROXY"), target, n, x, NULL};

	return start_listening_tool(argv, port_out);
}

GPid
test_slow_http_start(guint bytes_per_second, guint64 body_bytes, int *port_out)
{
	g_autofree char *rate = g_strdup_printf("%u", bytes_per_second);
	g_autofree char *size = g_strdup_printf("%" G_GUINT64_FORMAT, body_bytes);
	const char *argv[] = {test_program("HEALER_SLOW_HTTP"), rate, size, NULL};

	return start_listening_tool(argv, port_out);
}

/* ---- certificates ---- */

static void
openssl(const char *dir, const char *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autofree char *out = NULL, *err = NULL;
	g_autoptr(GError) error = NULL;
	int status = 0;

	g_ptr_array_add(argv, (char *)"openssl");
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (char *)args[i]);
	g_ptr_array_add(argv, NULL);
	g_spawn_sync(dir, (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &error);
	g_assert_no_error(error);
	if (!g_spawn_check_wait_status(status, NULL))
		g_error("openssl %s failed:\n%s", args[0], err);
}

static void
write_text(const char *dir, const char *name, const char *text)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);

	test_write_file(path, (const guint8 *)text, strlen(text));
}

char *
nginx_server_make_ca(NginxServer *s, const char *name)
{
	g_autofree char *config = g_strdup_printf("[req]\n"
	                                          "distinguished_name = dn\n"
	                                          "prompt = no\n"
	                                          "[dn]\n"
	                                          "CN = %s\n"
	                                          "[v3_ca]\n"
	                                          "basicConstraints = critical,CA:TRUE\n"
	                                          "keyUsage = critical,keyCertSign,cRLSign\n"
	                                          "subjectKeyIdentifier = hash\n",
	                                          name);
	g_autofree char *config_name = g_strdup_printf("%s.cnf", name);
	g_autofree char *key = g_strdup_printf("%s.key", name);
	g_autofree char *pem = g_strdup_printf("%s.pem", name);

	write_text(s->dir, config_name, config);
	openssl(s->dir, (const char *[]){"req", "-x509", "-config", config_name, "-extensions", "v3_ca", "-newkey",
	                                 "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
	                                 "-out", pem, "-days", "2", NULL});
	return g_build_filename(s->dir, pem, NULL);
}

/* server.pem and server.key for IP:127.0.0.1, signed by the CA `ca` (ca.pem, ca.key). */
static void
make_server_cert(const char *dir, const char *ca)
{
	g_autofree char *ca_pem = g_strdup_printf("%s.pem", ca);
	g_autofree char *ca_key = g_strdup_printf("%s.key", ca);

	write_text(dir, "server.cnf", "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = 127.0.0.1\n");
	write_text(dir, "server.ext",
	           "subjectAltName = IP:127.0.0.1\n"
	           "basicConstraints = CA:FALSE\n"
	           "keyUsage = critical,digitalSignature\n"
	           "extendedKeyUsage = serverAuth\n"
	           "authorityKeyIdentifier = keyid\n");
	openssl(dir, (const char *[]){"req", "-new", "-config", "server.cnf", "-newkey", "ec", "-pkeyopt",
	                              "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key", "-out",
	                              "server.csr", NULL});
	openssl(dir, (const char *[]){"x509", "-req", "-in", "server.csr", "-CA", ca_pem, "-CAkey", ca_key,
	                              "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
	                              NULL});
}

/* ---- nginx ---- */

/* nginx from meson's HEALER_NGINX, else the PATH or /usr/sbin (not in a user's PATH on Debian); NULL when missing. */
static const char *
nginx_path(void)
{
	static char *path;

	if (path == NULL) {
		const char *env = g_getenv("HEALER_NGINX");
		if (env != NULL && g_file_test(env, G_FILE_TEST_IS_EXECUTABLE))
			path = g_strdup(env);
		else if ((path = g_find_program_in_path("nginx")) == NULL &&
		         g_file_test("/usr/sbin/nginx", G_FILE_TEST_IS_EXECUTABLE))
			path = g_strdup("/usr/sbin/nginx");
	}
	return path;
}

gboolean
nginx_server_available(void)
{
	g_autofree char *openssl_path = g_find_program_in_path("openssl");

	return nginx_path() != NULL && openssl_path != NULL;
}

NginxServer *
nginx_server_new(const char *www, const char *extra)
{
	NginxServer *s = g_new0(NginxServer, 1);

	s->dir = test_tmpdir_new();
	s->www = www != NULL ? g_strdup(www) : g_build_filename(s->dir, "www", NULL);
	g_assert_cmpint(g_mkdir_with_parents(s->www, 0755), ==, 0);
	s->access_log = g_build_filename(s->dir, "access.log", NULL);
	s->error_log = g_build_filename(s->dir, "error.log", NULL);
	s->extra = g_strdup(extra);
	s->ca_file = nginx_server_make_ca(s, "ca");
	make_server_cert(s->dir, "ca");
	return s;
}

/* TRUE once it accepts on both ports; FALSE when it exited (a port taken meanwhile). */
static gboolean
try_start(NginxServer *s)
{
	g_autofree char *conf_path = g_build_filename(s->dir, "nginx.conf", NULL);
	g_autofree char *tmp = g_build_filename(s->dir, "tmp", NULL);
	g_autofree char *conf = NULL;
	g_autoptr(GError) error = NULL;
	const char *d = s->dir;
	int status;

	/* Single process, no daemon: nothing to switch user for, but as root say so (temp dirs are chowned to it). */
	conf = g_strdup_printf(
	        "daemon off;\n"
	        "master_process off;\n"
	        "%s"
	        "pid %s/nginx.pid;\n"
	        "error_log %s info;\n"
	        "events { worker_connections 256; }\n"
	        "http {\n"
	        "  log_format tests '$request_method $request_uri $status $body_bytes_sent $http_range';\n"
	        "  access_log %s tests;\n"
	        "  client_body_temp_path %s/tmp/body;\n"
	        "  proxy_temp_path %s/tmp/proxy;\n"
	        "  fastcgi_temp_path %s/tmp/fastcgi;\n"
	        "  uwsgi_temp_path %s/tmp/uwsgi;\n"
	        "  scgi_temp_path %s/tmp/scgi;\n"
	        "  types { application/json json; }\n"
	        "  default_type application/octet-stream;\n"
	        "  server {\n"
	        "    listen 127.0.0.1:%d ssl;\n"
	        "    listen 127.0.0.1:%d;\n"
	        "    ssl_certificate %s/server.pem;\n"
	        "    ssl_certificate_key %s/server.key;\n"
	        "    root %s;\n"
	        "%s"
	        "  }\n"
	        "}\n",
	        geteuid() == 0 ? "user root root;\n" : "", d, s->error_log, s->access_log, d, d, d, d, d, s->tls_port,
	        s->plain_port, d, d, s->www, s->extra != NULL ? s->extra : "");
	test_write_file(conf_path, (const guint8 *)conf, strlen(conf));
	g_mkdir_with_parents(tmp, 0755);

	const char *argv[] = {nginx_path(), "-p", d, "-e", s->error_log, "-c", conf_path, NULL};
	g_spawn_async(d, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL,
	              test_die_with_parent, NULL, &s->pid, &error);
	if (error != NULL)
		g_error("cannot start nginx (is nginx-light installed?): %s", error->message);

	/* until it accepts on both ports, or exits */
	for (;;) {
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			g_autofree char *log = NULL;
			g_file_get_contents(s->error_log, &log, NULL, NULL);
			g_test_message("nginx exited at start:\n%s", log != NULL ? log : "");
			s->pid = 0;
			return FALSE;
		}
		if (test_port_accepts(s->tls_port) && test_port_accepts(s->plain_port))
			return TRUE;
		g_usleep(20 * 1000);
	}
}

void
nginx_server_start(NginxServer *s, int tls_port)
{
	g_assert_cmpint(s->pid, ==, 0);
	for (int attempt = 0;; attempt++) {
		s->tls_port = tls_port != 0 ? tls_port : test_free_port();
		s->plain_port = test_free_port();
		if (try_start(s))
			return;
		if (attempt == 10)
			g_error("nginx did not start (TLS port %d); see %s", s->tls_port, s->error_log);
	}
}

void
nginx_server_stop(NginxServer *s)
{
	if (s->pid > 0) {
		test_child_stop(s->pid);
		s->pid = 0;
	}
}

void
nginx_server_free(NginxServer *s)
{
	if (s == NULL)
		return;
	nginx_server_stop(s);
	test_tmpdir_free(s->dir);
	g_free(s->www);
	g_free(s->ca_file);
	g_free(s->access_log);
	g_free(s->error_log);
	g_free(s->extra);
	g_free(s);
}

char *
nginx_server_url(const NginxServer *s, const char *path)
{
	return g_strdup_printf("https://127.0.0.1:%d/%s", s->tls_port, path);
}

static void
request_free(NginxRequest *r)
{
	g_free(r->method);
	g_free(r->uri);
	g_free(r->range);
	g_free(r);
}

GPtrArray *
nginx_server_requests(const NginxServer *s)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)request_free);
	g_autofree char *text = NULL;
	g_auto(GStrv) lines = NULL;

	if (!g_file_get_contents(s->access_log, &text, NULL, NULL))
		return out;
	lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i] != NULL; i++) {
		/* log_format tests: METHOD URI STATUS BODY_BYTES RANGE ("-": none) */
		g_auto(GStrv) f = g_strsplit(lines[i], " ", 5);
		NginxRequest *r;

		if (g_strv_length(f) != 5)
			continue;
		r = g_new0(NginxRequest, 1);
		r->method = g_strdup(f[0]);
		r->uri = g_strdup(f[1]);
		r->status = (guint)g_ascii_strtoull(f[2], NULL, 10);
		r->body_bytes = g_ascii_strtoull(f[3], NULL, 10);
		r->range = strcmp(f[4], "-") != 0 ? g_strdup(f[4]) : NULL;
		g_ptr_array_add(out, r);
	}
	return out;
}
