/*
 * Names kept in arrays indexed by a protocol's number (designated initializers), looked up with a
 * bound check: a number past the table, or a hole in it, has no name (NULL), so a device's
 * unknown value is never read outside the array.
 */
#pragma once

#include <glib.h>

#define NAME_OR_NULL(table, i) ((gsize)(i) < G_N_ELEMENTS(table) ? (table)[i] : NULL)
