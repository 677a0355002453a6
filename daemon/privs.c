/* Privilege drop and socket ownership (see privs.h). */
#include "daemon/privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

int privs_drop(const char *user, bool must_exist, char *err, size_t errlen)
{
	if (geteuid() != 0 || !user[0])
		return 0;
	errno = 0;
	const struct passwd *pw = getpwnam(user);
	if (!pw) {
		if (!must_exist && errno == 0)
			return 1;
		snprintf(err, errlen, "user '%s': %s", user, errno ? strerror(errno) : "no such user");
		return errno ? -errno : -ENOENT;
	}
	if (pw->pw_uid == 0)
		return 0;
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0) {
		int e = errno;
		snprintf(err, errlen, "user '%s': setting groups: %s", user, strerror(e));
		return -e;
	}
	if (setuid(pw->pw_uid) < 0) {
		int e = errno;
		snprintf(err, errlen, "user '%s': setuid(%u): %s", user, (unsigned)pw->pw_uid, strerror(e));
		return -e;
	}
	/* Proves the drop is irreversible before anything else runs. */
	if (setuid(0) == 0) {
		snprintf(err, errlen, "user '%s': could regain root after setuid", user);
		return -EPERM;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		int e = errno;
		snprintf(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(e));
		return -e;
	}
	return 0;
}

int privs_socket_perms(const char *path, const char *group, unsigned mode, char *err, size_t errlen)
{
	if (group[0]) {
		errno = 0;
		const struct group *gr = getgrnam(group);
		if (!gr) {
			snprintf(err, errlen, "socket_group '%s': %s", group,
				 errno ? strerror(errno) : "no such group");
			return errno ? -errno : -ENOENT;
		}
		if (chown(path, (uid_t)-1, gr->gr_gid) < 0) {
			int e = errno;
			snprintf(err, errlen, "socket %s: chown to group '%s': %s", path, group, strerror(e));
			return -e;
		}
	}
	if (chmod(path, mode) < 0) {
		int e = errno;
		snprintf(err, errlen, "socket %s: chmod %o: %s", path, mode, strerror(e));
		return -e;
	}
	return 0;
}
