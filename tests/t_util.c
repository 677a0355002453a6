/* Shared helpers for the Check suites. */
#include "tests/t_util.h"

#include <dirent.h>
#include <sched.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return v && *v ? v : fallback;
}

const char *t_shared(const char *rel)
{
	static char buf[4096];
	snprintf(buf, sizeof(buf), "%s/%s", env_or("GI_SHARED", "../shared"), rel);
	return buf;
}

const char *t_build(const char *rel)
{
	static char buf[4096];
	snprintf(buf, sizeof(buf), "%s/%s", env_or("GI_BUILD", "build"), rel);
	return buf;
}

int t_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory stream's own fd */
}

void *t_read_file(const char *path, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r <= 0) {
			free(buf);
			buf = NULL;
			break;
		}
		got += (size_t)r;
	}
	close(fd);
	if (!buf)
		return NULL;
	buf[got] = 0;
	if (ret_len)
		*ret_len = got;
	return buf;
}

char *t_tmpdir(void)
{
	char tmpl[] = "/tmp/gi-test-XXXXXX";
	char *d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

void t_pin_nth_cpu(int n)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (int i = 0; i < CPU_SETSIZE; i++) {
		cpu_set_t one;

		if (!CPU_ISSET(i, &set) || n-- > 0)
			continue;
		CPU_ZERO(&one);
		CPU_SET(i, &one);
		sched_setaffinity(0, sizeof(one), &one); /* 0: the calling thread */
		return;
	}
}
