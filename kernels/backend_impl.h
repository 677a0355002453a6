/* Shared by the backend implementations, not by the engine. */
#pragma once
#include <stddef.h>

#include "kernels/backend.h"

/* Checks the shapes and operands of every node of D; -EINVAL with a message
 * naming the node. */
int gi_graph_check(const struct gi_graph_desc *d, char *err, size_t errlen);
