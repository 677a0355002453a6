/* Dropping root after set-up (the model is loaded and the socket bound). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* Switches to USER (its uid, primary group and supplementary groups) and
 * sets no_new_privs. Does nothing when not running as root or USER is "".
 * When USER does not exist and MUST_EXIST is false, stays root and returns
 * 1 (the caller logs a warning). -errno with a message in ERR otherwise. */
int privs_drop(const char *user, bool must_exist, char *err, size_t errlen);

/* Gives the socket file PATH the group GROUP ("" = leave) and MODE. */
int privs_socket_perms(const char *path, const char *group, unsigned mode, char *err, size_t errlen);
