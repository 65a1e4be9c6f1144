/*
 * NAME
 *	test_dns - MX and address look-ups against a real DNS server
 * DESCRIPTION
 *	Starts tests/servers/dnsserver.py on 127.0.0.1 and a free port with
 *	a zone written under a mkdtemp(3) directory, and runs dns_find_mx()
 *	and dns_find_addrs() against it: the real wire format, UDP with TCP
 *	fallback, time-outs that really expire. The server's query log
 *	tells which queries went out and over which transport. No test here
 *	ever asks a real DNS server: the system resolver (resolver "") is
 *	only parsed, never used.
 *
 *	The script is found under $MXL_SRCDIR, else $MXL_SRC (set by
 *	tests/run.sh, which runs tests in a scratch directory), else the
 *	current directory. It runs under $MXL_PYTHON, default
 *	/usr/bin/python3, the interpreter Debian's python3-dnslib is
 *	installed for. The server dies with this test (PR_SET_PDEATHSIG),
 *	so a crash here leaves nothing listening.
 *
 *	Like the queue runner (queuerun/connect.c), this program defines
 *	connect(); ours refuses and counts. Every look-up must still work
 *	and the count stay 0: the resolver's sockets never go through a
 *	program's connect().
 */
#include "dns/dns.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "tests/unit/unit.h"

#define START_WAIT_MS	15000
#define STOP_WAIT_MS	10000
#define MANY_A		60	/* A records: more than 512 octets */
#define BIG_MX		40

static char dir[PATH_MAX - 32];
static char zone_path[PATH_MAX], port_path[PATH_MAX], log_path[PATH_MAX];
static pid_t server_pid = -1;
static int server_port;

static int interposed_connects;

int
connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	(void)fd;
	(void)addr;
	(void)len;
	interposed_connects++;
	errno = EACCES;
	return -1;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static const char zone_text[] =
    "# ordering\n"
    "order.test MX 30 mx3.order.test\n"
    "order.test MX 10 mx1.order.test\n"
    "order.test MX 20 mx2.order.test\n"
    "mx1.order.test A 127.0.0.11\n"
    "mx2.order.test A 127.0.0.12\n"
    "mx3.order.test A 127.0.0.13\n"
    "# shuffling among equals\n"
    "equal.test MX 10 a.equal.test\n"
    "equal.test MX 10 b.equal.test\n"
    "equal.test MX 5 first.equal.test\n"
    "equal.test MX 20 last.equal.test\n"
    "a.equal.test A 127.0.0.21\n"
    "b.equal.test A 127.0.0.22\n"
    "first.equal.test A 127.0.0.23\n"
    "last.equal.test A 127.0.0.24\n"
    "# the same exchange twice: one host, best preference\n"
    "dup.test MX 20 mx.dup.test\n"
    "dup.test MX 10 MX.Dup.Test.\n"
    "dup.test MX 30 other.dup.test\n"
    "mx.dup.test A 127.0.0.31\n"
    "other.dup.test A 127.0.0.32\n"
    "# no MX\n"
    "implicit.test A 127.0.0.20\n"
    "implicit.test TXT no mx here\n"
    "noaddr.test TXT nothing to dial\n"
    "# RFC 7505\n"
    "nullmx.test MX 0 .\n"
    "halfnull.test MX 0 .\n"
    "halfnull.test MX 10 mx1.order.test\n"
    "# failures\n"
    "broken.test SERVFAIL\n"
    "refused.test REFUSED\n"
    "slow.test TIMEOUT\n"
    "# CNAMEs\n"
    "alias.test CNAME real.test\n"
    "alias2.test CNAME alias.test\n"
    "real.test MX 10 mx1.order.test\n"
    "partial.test CNAME real.test nochase\n"
    "cnamemx.test MX 10 hostalias.test\n"
    "hostalias.test CNAME mx2.order.test\n"
    "dangling.test CNAME nowhere.test\n"
    "loop1.test CNAME loop2.test\n"
    "loop2.test CNAME loop1.test\n"
    "# hosts without addresses\n"
    "skip.test MX 10 noaddr.skip.test\n"
    "skip.test MX 20 txtonly.skip.test\n"
    "skip.test MX 30 good.skip.test\n"
    "txtonly.skip.test TXT no address\n"
    "good.skip.test A 127.0.0.30\n"
    "dead.test MX 10 gone1.dead.test\n"
    "dead.test MX 20 gone2.dead.test\n"
    "deadtemp.test MX 10 gone.deadtemp.test\n"
    "deadtemp.test MX 20 sick.deadtemp.test\n"
    "sick.deadtemp.test SERVFAIL\n"
    "tempok.test MX 10 sick.deadtemp.test\n"
    "tempok.test MX 20 good.skip.test\n"
    "# IPv6\n"
    "v6.test MX 10 mx.v6.test\n"
    "mx.v6.test AAAA ::1\n"
    "dual.test MX 10 mx.dual.test\n"
    "mx.dual.test A 127.0.0.40\n"
    "mx.dual.test AAAA 2001:db8::40\n"
    "halfsick.test SERVFAIL A\n"
    "halfsick.test AAAA ::1\n";

static int
write_zone(const char *path)
{
	FILE *f;
	int i;

	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fputs(zone_text, f);
	for (i = 1; i <= MANY_A; i++)
		fprintf(f, "many.test A 127.0.1.%d\n", i);
	for (i = 1; i <= BIG_MX; i++)
		fprintf(f, "bigmx.test MX %d mx%d.bigmx.test\n"
		    "mx%d.bigmx.test A 127.0.2.%d\n", i, i, i, i);
	return fclose(f);
}

static int
read_port(void)
{
	char line[32];
	FILE *f;
	int port = 0;

	if ((f = fopen(port_path, "r")) == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) != NULL)
		port = atoi(line);
	fclose(f);
	return port;
}

static void
exec_server(const char *python, const char *script)
{
	int null;

	/* Die with the test, whatever kills it. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		_exit(1);
	/* The port goes to the port file; stdout would only be noise. */
	if ((null = open("/dev/null", O_WRONLY)) != -1)
		dup2(null, 1);
	execl(python, python, script, "--zone", zone_path, "--port", "0",
	    "--port-file", port_path, "--log", log_path, (char *)NULL);
	perror(python);
	_exit(127);
}

static int
start_server(void)
{
	const char *src = getenv("MXL_SRCDIR"), *python;
	char script[PATH_MAX];
	long long deadline;
	int status;

	if (src == NULL || *src == '\0')
		src = getenv("MXL_SRC");
	if (src == NULL || *src == '\0')
		src = ".";
	if ((python = getenv("MXL_PYTHON")) == NULL || *python == '\0')
		python = "/usr/bin/python3";
	snprintf(script, sizeof(script), "%s/tests/servers/dnsserver.py", src);
	if (access(script, R_OK) == -1) {
		fprintf(stderr, "test_dns: no %s (set MXL_SRCDIR)\n", script);
		return -1;
	}
	fflush(NULL);
	if ((server_pid = fork()) == -1)
		return -1;
	if (server_pid == 0)
		exec_server(python, script);
	deadline = now_ms() + START_WAIT_MS;
	while (now_ms() < deadline) {
		if ((server_port = read_port()) > 0)
			return 0;
		if (waitpid(server_pid, &status, WNOHANG) == server_pid) {
			fprintf(stderr, "test_dns: dnsserver.py exited "
			    "early\n");
			server_pid = -1;
			return -1;
		}
		sleep_ms(20);
	}
	fprintf(stderr, "test_dns: dnsserver.py wrote no port file\n");
	return -1;
}

/* Returns the server's exit status, or -1 when it had to be killed. */
static int
stop_server(void)
{
	long long deadline = now_ms() + STOP_WAIT_MS;
	int status;

	if (server_pid == -1)
		return -1;
	kill(server_pid, SIGTERM);
	while (now_ms() < deadline) {
		if (waitpid(server_pid, &status, WNOHANG) == server_pid) {
			server_pid = -1;
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		}
		sleep_ms(20);
	}
	kill(server_pid, SIGKILL);
	waitpid(server_pid, &status, 0);
	server_pid = -1;
	return -1;
}

/* Lines of the server's query log that contain text. */
static int
log_count(const char *text)
{
	char line[512];
	FILE *f;
	int n = 0;

	if ((f = fopen(log_path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, text) != NULL)
			n++;
	fclose(f);
	return n;
}

static struct dns_resolver
resolver(int timeout_ms, int tries)
{
	struct dns_resolver r;
	char spec[64], err[256];

	snprintf(spec, sizeof(spec), "127.0.0.1:%d", server_port);
	if (dns_resolver_init(&r, spec, err, sizeof(err)) == -1)
		fprintf(stderr, "test_dns: %s\n", err);
	r.timeout_ms = timeout_ms;
	r.tries = tries;
	return r;
}

static const char *
addr(const struct dns_host *h, size_t i)
{
	static char text[INET6_ADDRSTRLEN];

	if (i >= h->naddrs)
		return "(none)";
	dns_addr_string(&h->addrs[i], text, sizeof(text));
	return text;
}

static in_port_t
port_of(const struct dns_resolver *r)
{
	const struct sockaddr_in6 *sin6 = (const void *)&r->server;
	const struct sockaddr_in *sin = (const void *)&r->server;

	if (r->server.ss_family == AF_INET6)
		return ntohs(sin6->sin6_port);
	return ntohs(sin->sin_port);
}

static void
test_resolver_spec(void)
{
	static const char *const bad[] = {
		"localhost", "localhost:53", "127.0.0.1:", "127.0.0.1:0",
		"127.0.0.1:65536", "127.0.0.1:53x", "127.0.0.1:-1",
		"127.0.0.1:000053", "[::1", "[::1]x", "[::1]:", "[]:53",
		"[127.0.0.1]:53", "1.2.3", "127.1", " 127.0.0.1",
		"127.0.0.1 ", "127.0.0.1:5353:1", "::g", "0x7f.0.0.1",
	};
	struct dns_resolver r;
	char err[256], ip[INET6_ADDRSTRLEN];
	size_t i;

	CHECK_INT(dns_resolver_init(&r, "127.0.0.1:5353", err, sizeof(err)),
	    0);
	CHECK(!r.use_system);
	CHECK_INT(r.server.ss_family, AF_INET);
	CHECK_INT(r.server_len, sizeof(struct sockaddr_in));
	CHECK_INT(port_of(&r), 5353);
	dns_addr_string(&r.server, ip, sizeof(ip));
	CHECK_STR(ip, "127.0.0.1");
	CHECK_INT(r.timeout_ms, 5000);
	CHECK_INT(r.tries, 2);

	CHECK_INT(dns_resolver_init(&r, "[::1]:53", err, sizeof(err)), 0);
	CHECK_INT(r.server.ss_family, AF_INET6);
	CHECK_INT(r.server_len, sizeof(struct sockaddr_in6));
	CHECK_INT(port_of(&r), 53);
	dns_addr_string(&r.server, ip, sizeof(ip));
	CHECK_STR(ip, "::1");

	CHECK_INT(dns_resolver_init(&r, "[2001:db8::5]:5353", err,
	    sizeof(err)), 0);
	CHECK_INT(port_of(&r), 5353);

	CHECK_INT(dns_resolver_init(&r, "127.0.0.1", err, sizeof(err)), 0);
	CHECK_INT(r.server.ss_family, AF_INET);
	CHECK_INT(port_of(&r), 53);

	CHECK_INT(dns_resolver_init(&r, "::1", err, sizeof(err)), 0);
	CHECK_INT(r.server.ss_family, AF_INET6);
	CHECK_INT(port_of(&r), 53);
	CHECK_INT(dns_resolver_init(&r, "[::1]", err, sizeof(err)), 0);
	CHECK_INT(port_of(&r), 53);

	CHECK_INT(dns_resolver_init(&r, "", err, sizeof(err)), 0);
	CHECK(r.use_system);
	CHECK_INT(r.timeout_ms, 5000);
	CHECK_INT(r.tries, 2);
	CHECK_INT(dns_resolver_init(&r, NULL, err, sizeof(err)), 0);
	CHECK(r.use_system);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK_INT(dns_resolver_init(&r, bad[i], err, sizeof(err)), -1);
		CHECK(strstr(err, bad[i]) != NULL);
		CHECK(!r.use_system);
	}
}

static void
test_order(void)
{
	struct dns_resolver r = resolver(2000, 2);
	struct dns_mx mx;
	char err[512] = "stale";

	CHECK_INT(dns_find_mx(&r, "order.test", false, &mx, err, sizeof(err)),
	    DNS_OK);
	CHECK_STR(err, "");
	CHECK(!mx.implicit);
	CHECK_INT(mx.nhosts, 3);
	if (mx.nhosts == 3) {
		CHECK_STR(mx.hosts[0].name, "mx1.order.test");
		CHECK_STR(mx.hosts[1].name, "mx2.order.test");
		CHECK_STR(mx.hosts[2].name, "mx3.order.test");
		CHECK_INT(mx.hosts[0].preference, 10);
		CHECK_INT(mx.hosts[1].preference, 20);
		CHECK_INT(mx.hosts[2].preference, 30);
		CHECK_INT(mx.hosts[0].naddrs, 1);
		CHECK_STR(addr(&mx.hosts[0], 0), "127.0.0.11");
		CHECK_STR(addr(&mx.hosts[2], 0), "127.0.0.13");
		CHECK_INT(mx.hosts[0].addrs[0].ss_family, AF_INET);
		CHECK_INT(mx.hosts[0].addr_lens[0], sizeof(struct sockaddr_in));
		CHECK_INT(ntohs(((struct sockaddr_in *)
		    &mx.hosts[0].addrs[0])->sin_port), 0);
	}
	dns_mx_free(&mx);
	CHECK(mx.hosts == NULL && mx.nhosts == 0);
	dns_mx_free(&mx);		/* twice is harmless */

	/* Fully qualified and differently cased names are the same name. */
	CHECK_INT(dns_find_mx(&r, "ORDER.Test.", false, &mx, err,
	    sizeof(err)), DNS_OK);
	CHECK_INT(mx.nhosts, 3);
	dns_mx_free(&mx);
}

static void
test_shuffle(void)
{
	struct dns_resolver r = resolver(2000, 2);
	int i, ab = 0, ba = 0, other = 0;
	struct dns_mx mx;
	char err[512];

	for (i = 0; i < 200; i++) {
		if (dns_find_mx(&r, "equal.test", false, &mx, err,
		    sizeof(err)) != DNS_OK || mx.nhosts != 4) {
			other++;
			dns_mx_free(&mx);
			continue;
		}
		if (strcmp(mx.hosts[0].name, "first.equal.test") != 0 ||
		    strcmp(mx.hosts[3].name, "last.equal.test") != 0)
			other++;
		else if (strcmp(mx.hosts[1].name, "a.equal.test") == 0 &&
		    strcmp(mx.hosts[2].name, "b.equal.test") == 0)
			ab++;
		else if (strcmp(mx.hosts[1].name, "b.equal.test") == 0 &&
		    strcmp(mx.hosts[2].name, "a.equal.test") == 0)
			ba++;
		else
			other++;
		dns_mx_free(&mx);
	}
	CHECK_INT(other, 0);
	/* Fair coin, 200 throws: fewer than 40 of one side is ~1e-18. */
	CHECK(ab >= 40);
	CHECK(ba >= 40);
	CHECK_INT(ab + ba, 200);
}

static void
test_dedupe(void)
{
	struct dns_resolver r = resolver(2000, 2);
	struct dns_mx mx;
	char err[512];

	CHECK_INT(dns_find_mx(&r, "dup.test", false, &mx, err, sizeof(err)),
	    DNS_OK);
	CHECK_INT(mx.nhosts, 2);
	if (mx.nhosts == 2) {
		CHECK(str_casecmp_ascii(mx.hosts[0].name, "mx.dup.test") == 0);
		CHECK_INT(mx.hosts[0].preference, 10);
		CHECK_STR(mx.hosts[1].name, "other.dup.test");
	}
	dns_mx_free(&mx);
}

static void
test_implicit(void)
{
	struct dns_resolver r = resolver(2000, 2);
	struct dns_mx mx;
	char err[512];

	CHECK_INT(dns_find_mx(&r, "implicit.test", false, &mx, err,
	    sizeof(err)), DNS_OK);
	CHECK(mx.implicit);
	CHECK_INT(mx.nhosts, 1);
	if (mx.nhosts == 1) {
		CHECK_STR(mx.hosts[0].name, "implicit.test");
		CHECK_INT(mx.hosts[0].preference, -1);
		CHECK_STR(addr(&mx.hosts[0], 0), "127.0.0.20");
	}
	dns_mx_free(&mx);

	/* Neither MX nor address: nothing to try, ever. */
	CHECK_INT(dns_find_mx(&r, "noaddr.test", false, &mx, err,
	    sizeof(err)), DNS_PERMFAIL);
	CHECK_STR(err, "Host or domain name not found. Name service error "
	    "for name=noaddr.test type=A: Host found but no data record of "
	    "requested type");
	CHECK(mx.hosts == NULL && mx.nhosts == 0);
	dns_mx_free(&mx);
}

static void
test_nullmx(void)
{
	struct dns_resolver r = resolver(2000, 2);
	struct dns_mx mx;
	char err[512];

	CHECK_INT(dns_find_mx(&r, "nullmx.test", false, &mx, err,
	    sizeof(err)), DNS_NULLMX);
	CHECK_STR(err, "Domain nullmx.test does not accept mail (nullMX)");
	CHECK(mx.hosts == NULL && mx.nhosts == 0);
	dns_mx_free(&mx);

	/* "." beside real hosts is not RFC 7505; it is only unusable. */
	CHECK_INT(dns_find_mx(&r, "halfnull.test", false, &mx, err,
	    sizeof(err)), DNS_OK);
	CHECK_INT(mx.nhosts, 1);
	if (mx.nhosts == 1)
		CHECK_STR(mx.hosts[0].name, "mx1.order.test");
	dns_mx_free(&mx);
}

static void
test_failures(void)
{
	struct dns_resolver r = resolver(2000, 2);
	struct dns_mx mx;
	char err[512];
	long long t0;

	CHECK_INT(dns_find_mx(&r, "nosuch.test", false, &mx, err,
	    sizeof(err)), DNS_PERMFAIL);
	CHECK_STR(err, "Host or domain name not found. Name service error "
	    "for name=nosuch.test type=MX: Host not found");
	CHECK(mx.hosts == NULL);

	/* A server's failure is an answer: no waiting, no retry. */
	t0 = now_ms();
	CHECK_INT(dns_find_mx(&r, "broken.test", false, &mx, err,
	    sizeof(err)), DNS_TEMPFAIL);
	CHECK(now_ms() - t0 < 1000);
	CHECK_STR(err, "Host or domain name not found. Name service error "
	    "for name=broken.test type=MX: Host not found, try again");
	CHECK_INT(dns_find_mx(&r, "refused.test", false, &mx, err,
	    sizeof(err)), DNS_TEMPFAIL);
	CHECK(strstr(err, "name=refused.test type=MX") != NULL);

	/* Labels over 63 octets cannot be asked about, so cannot exist. */
	CHECK_INT(dns_find_mx(&r, "a23456789012345678901234567890123456789"
	    "0123456789012345678901234567890.test", false, &mx, err,
	    sizeof(err)), DNS_PERMFAIL);
	dns_mx_free(&mx);
}

static void
test_timeout(void)
{
	struct dns_resolver r = resolver(300, 1);
	int before = log_count("udp slow.test. MX TIMEOUT");
	struct dns_mx mx;
	char err[512];
	long long t0, took;

	t0 = now_ms();
	CHECK_INT(dns_find_mx(&r, "slow.test", false, &mx, err, sizeof(err)),
	    DNS_TEMPFAIL);
	took = now_ms() - t0;
	CHECK(took >= 290 && took < 1500);
	CHECK_STR(err, "Host or domain name not found. Name service error "
	    "for name=slow.test type=MX: Host not found, try again");
	CHECK_INT(log_count("udp slow.test. MX TIMEOUT") - before, 1);

	r.tries = 3;
	t0 = now_ms();
	CHECK_INT(dns_find_mx(&r, "slow.test", false, &mx, err, sizeof(err)),
	    DNS_TEMPFAIL);
	took = now_ms() - t0;
	CHECK(took >= 890 && took < 2500);
	CHECK_INT(log_count("udp slow.test. MX TIMEOUT") - before, 4);
	dns_mx_free(&mx);
}

/* Nobody listening: the port-unreachable error ends the try at once. */
static void
test_no_server(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct dns_resolver r;
	struct dns_mx mx;
	char spec[64], err[512];
	long long t0;
	int fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK(fd != -1 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0
	    && getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
	close(fd);
	snprintf(spec, sizeof(spec), "127.0.0.1:%d", ntohs(sin.sin_port));
	CHECK_INT(dns_resolver_init(&r, spec, err, sizeof(err)), 0);
	r.timeout_ms = 3000;
	t0 = now_ms();
	CHECK_INT(dns_find_mx(&r, "order.test", false, &mx, err, sizeof(err)),
	    DNS_TEMPFAIL);
	CHECK(now_ms() - t0 < 2000);
	dns_mx_free(&mx);
}

static void
test_cname(void)
{
	struct dns_resolver r = resolver(2000, 2);
	struct dns_host h;
	struct dns_mx mx;
	char err[512];
	long long t0;
	int before;

	CHECK_INT(dns_find_mx(&r, "alias.test", false, &mx, err, sizeof(err)),
	    DNS_OK);
	CHECK_INT(mx.nhosts, 1);
	if (mx.nhosts == 1) {
		CHECK_STR(mx.hosts[0].name, "mx1.order.test");
		CHECK_STR(addr(&mx.hosts[0], 0), "127.0.0.11");
	}
	dns_mx_free(&mx);

	CHECK_INT(dns_find_mx(&r, "alias2.test", false, &mx, err,
	    sizeof(err)), DNS_OK);
	CHECK_INT(mx.nhosts, 1);
	dns_mx_free(&mx);

	/* The answer stops at the alias: the target is asked directly. */
	before = log_count("udp real.test. MX NOERROR");
	CHECK_INT(dns_find_mx(&r, "partial.test", false, &mx, err,
	    sizeof(err)), DNS_OK);
	CHECK_INT(mx.nhosts, 1);
	if (mx.nhosts == 1)
		CHECK_STR(mx.hosts[0].name, "mx1.order.test");
	CHECK_INT(log_count("udp real.test. MX NOERROR") - before, 1);
	dns_mx_free(&mx);

	/* An MX exchange that is an alias (RFC 2181 10.3 says it must not
	 * be, but it happens) keeps its name and gets the target's address. */
	CHECK_INT(dns_find_mx(&r, "cnamemx.test", false, &mx, err,
	    sizeof(err)), DNS_OK);
	CHECK_INT(mx.nhosts, 1);
	if (mx.nhosts == 1) {
		CHECK_STR(mx.hosts[0].name, "hostalias.test");
		CHECK_STR(addr(&mx.hosts[0], 0), "127.0.0.12");
	}
	dns_mx_free(&mx);

	CHECK_INT(dns_find_addrs(&r, "hostalias.test", false, &h, err,
	    sizeof(err)), DNS_OK);
	CHECK_STR(h.name, "hostalias.test");
	CHECK_INT(h.naddrs, 1);
	CHECK_STR(addr(&h, 0), "127.0.0.12");
	dns_host_free(&h);

	CHECK_INT(dns_find_mx(&r, "dangling.test", false, &mx, err,
	    sizeof(err)), DNS_PERMFAIL);
	CHECK(strstr(err, "name=dangling.test type=MX: Host not found") !=
	    NULL);

	t0 = now_ms();
	CHECK_INT(dns_find_mx(&r, "loop1.test", false, &mx, err,
	    sizeof(err)), DNS_TEMPFAIL);
	CHECK(now_ms() - t0 < 2000);
	CHECK(mx.hosts == NULL);
}

static void
test_unresolvable(void)
{
	struct dns_resolver r = resolver(2000, 2);
	struct dns_mx mx;
	char err[512];

	CHECK_INT(dns_find_mx(&r, "skip.test", false, &mx, err, sizeof(err)),
	    DNS_OK);
	CHECK_INT(mx.nhosts, 1);
	if (mx.nhosts == 1) {
		CHECK_STR(mx.hosts[0].name, "good.skip.test");
		CHECK_INT(mx.hosts[0].preference, 30);
		CHECK_STR(addr(&mx.hosts[0], 0), "127.0.0.30");
	}
	CHECK_STR(err, "");
	dns_mx_free(&mx);

	/* Every host gone for good: bounce, naming the last one. */
	CHECK_INT(dns_find_mx(&r, "dead.test", false, &mx, err, sizeof(err)),
	    DNS_PERMFAIL);
	CHECK_STR(err, "Host or domain name not found. Name service error "
	    "for name=gone2.dead.test type=A: Host not found");
	CHECK(mx.hosts == NULL && mx.nhosts == 0);

	/* One of them may come back: defer, naming that one. */
	CHECK_INT(dns_find_mx(&r, "deadtemp.test", false, &mx, err,
	    sizeof(err)), DNS_TEMPFAIL);
	CHECK_STR(err, "Host or domain name not found. Name service error "
	    "for name=sick.deadtemp.test type=A: Host not found, try again");
	CHECK(mx.hosts == NULL);

	/* The best host is sick but a backup resolves: use the backup. */
	CHECK_INT(dns_find_mx(&r, "tempok.test", false, &mx, err,
	    sizeof(err)), DNS_OK);
	CHECK_INT(mx.nhosts, 1);
	if (mx.nhosts == 1)
		CHECK_STR(mx.hosts[0].name, "good.skip.test");
	dns_mx_free(&mx);
}

static void
test_ipv6(void)
{
	struct dns_resolver r = resolver(2000, 2);
	struct dns_host h;
	struct dns_mx mx;
	char err[512];
	int before;

	CHECK_INT(dns_find_mx(&r, "v6.test", false, &mx, err, sizeof(err)),
	    DNS_PERMFAIL);
	CHECK(strstr(err, "name=mx.v6.test type=A: Host found but no data")
	    != NULL);
	CHECK_INT(dns_find_mx(&r, "v6.test", true, &mx, err, sizeof(err)),
	    DNS_OK);
	CHECK_INT(mx.nhosts, 1);
	if (mx.nhosts == 1) {
		CHECK_INT(mx.hosts[0].naddrs, 1);
		CHECK_STR(addr(&mx.hosts[0], 0), "::1");
		CHECK_INT(mx.hosts[0].addrs[0].ss_family, AF_INET6);
		CHECK_INT(mx.hosts[0].addr_lens[0],
		    sizeof(struct sockaddr_in6));
	}
	dns_mx_free(&mx);

	/* A first, then AAAA; and no AAAA query unless asked for. */
	before = log_count("mx.dual.test. AAAA");
	CHECK_INT(dns_find_mx(&r, "dual.test", false, &mx, err, sizeof(err)),
	    DNS_OK);
	CHECK_INT(mx.nhosts == 1 ? mx.hosts[0].naddrs : 0, 1);
	CHECK_INT(log_count("mx.dual.test. AAAA") - before, 0);
	dns_mx_free(&mx);
	CHECK_INT(dns_find_mx(&r, "dual.test", true, &mx, err, sizeof(err)),
	    DNS_OK);
	CHECK_INT(mx.nhosts, 1);
	if (mx.nhosts == 1) {
		CHECK_INT(mx.hosts[0].naddrs, 2);
		CHECK_STR(addr(&mx.hosts[0], 0), "127.0.0.40");
		CHECK_STR(addr(&mx.hosts[0], 1), "2001:db8::40");
	}
	dns_mx_free(&mx);

	CHECK_INT(dns_find_addrs(&r, "mx.dual.test", true, &h, err,
	    sizeof(err)), DNS_OK);
	CHECK_INT(h.naddrs, 2);
	CHECK_INT(h.preference, -1);
	dns_host_free(&h);
	CHECK(h.name == NULL);

	/* A fails for now, AAAA works: an address is an address. */
	CHECK_INT(dns_find_addrs(&r, "halfsick.test", true, &h, err,
	    sizeof(err)), DNS_OK);
	CHECK_INT(h.naddrs, 1);
	CHECK_STR(addr(&h, 0), "::1");
	dns_host_free(&h);
	CHECK_INT(dns_find_addrs(&r, "halfsick.test", false, &h, err,
	    sizeof(err)), DNS_TEMPFAIL);
	CHECK(h.name == NULL && h.naddrs == 0);
	dns_host_free(&h);

	CHECK_INT(dns_find_addrs(&r, "nosuch.test", true, &h, err,
	    sizeof(err)), DNS_PERMFAIL);
	CHECK_STR(err, "Host or domain name not found. Name service error "
	    "for name=nosuch.test type=A: Host not found");
	CHECK_INT(log_count("nosuch.test. AAAA"), 0);
	dns_host_free(&h);
}

static void
test_truncated(void)
{
	struct dns_resolver r = resolver(2000, 2);
	struct dns_host h;
	struct dns_mx mx;
	char err[512];
	size_t i;
	bool sorted = true;

	CHECK_INT(dns_find_addrs(&r, "many.test", false, &h, err,
	    sizeof(err)), DNS_OK);
	CHECK_INT(h.naddrs, DNS_MAX_ADDRS);
	CHECK_STR(addr(&h, 0), "127.0.1.1");
	CHECK_STR(addr(&h, DNS_MAX_ADDRS - 1), "127.0.1.16");
	CHECK_INT(log_count("udp many.test. A TRUNCATED"), 1);
	CHECK_INT(log_count("tcp many.test. A NOERROR"), 1);
	dns_host_free(&h);

	CHECK_INT(dns_find_mx(&r, "bigmx.test", false, &mx, err,
	    sizeof(err)), DNS_OK);
	CHECK_INT(log_count("tcp bigmx.test. MX NOERROR"), 1);
	CHECK_INT(mx.nhosts, 8);	/* only the best 8 are looked up */
	for (i = 0; i < mx.nhosts; i++)
		if (mx.hosts[i].preference != (int)i + 1)
			sorted = false;
	CHECK(sorted);
	dns_mx_free(&mx);
}

/* The server rereads a zone replaced under it; later tests rely on it. */
static void
test_zone_reload(void)
{
	struct dns_resolver r = resolver(2000, 2);
	char tmp[PATH_MAX], err[512];
	struct dns_host h;
	FILE *f;

	CHECK_INT(dns_find_addrs(&r, "late.test", false, &h, err,
	    sizeof(err)), DNS_PERMFAIL);
	snprintf(tmp, sizeof(tmp), "%s/zone.new", dir);
	CHECK(write_zone(tmp) == 0 && (f = fopen(tmp, "a")) != NULL &&
	    fputs("late.test A 127.0.0.50\n", f) >= 0 && fclose(f) == 0 &&
	    rename(tmp, zone_path) == 0);
	CHECK_INT(dns_find_addrs(&r, "late.test", false, &h, err,
	    sizeof(err)), DNS_OK);
	CHECK_STR(addr(&h, 0), "127.0.0.50");
	dns_host_free(&h);
}

static void
test_addr_string(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	char out[INET6_ADDRSTRLEN], tiny[4];

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.1", &sin->sin_addr);
	dns_addr_string(&ss, out, sizeof(out));
	CHECK_STR(out, "192.0.2.1");
	memset(&ss, 0, sizeof(ss));
	sin6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &sin6->sin6_addr);
	dns_addr_string(&ss, out, sizeof(out));
	CHECK_STR(out, "2001:db8::1");
	dns_addr_string(&ss, tiny, sizeof(tiny));
	CHECK_STR(tiny, "?");
	ss.ss_family = AF_UNIX;
	dns_addr_string(&ss, out, sizeof(out));
	CHECK_STR(out, "?");
}

static void
cleanup(void)
{
	unlink(zone_path);
	unlink(port_path);
	unlink(log_path);
	rmdir(dir);
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR");

	test_resolver_spec();
	test_addr_string();

	snprintf(dir, sizeof(dir), "%s/test_dns.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(zone_path, sizeof(zone_path), "%s/zone", dir);
	snprintf(port_path, sizeof(port_path), "%s/port", dir);
	snprintf(log_path, sizeof(log_path), "%s/queries.log", dir);
	CHECK_INT(write_zone(zone_path), 0);
	if (start_server() == -1) {
		CHECK(!"dnsserver.py started");
		stop_server();
		return unit_done("dns");
	}

	test_order();
	test_shuffle();
	test_dedupe();
	test_implicit();
	test_nullmx();
	test_failures();
	test_timeout();
	test_no_server();
	test_cname();
	test_unresolvable();
	test_ipv6();
	test_truncated();
	test_zone_reload();
	CHECK_INT(interposed_connects, 0);

	CHECK_INT(stop_server(), 0);	/* SIGTERM ends it cleanly */
	if (unit_failed == 0)
		cleanup();
	else
		fprintf(stderr, "test_dns: zone and query log kept in %s\n",
		    dir);
	return unit_done("dns");
}
