/* Applications: what runs when the device is not in safe mode. */
#ifndef HEALER_FW_APP_H
#define HEALER_FW_APP_H

#include "dynalib.h"

typedef struct {
	const char *name;
	uint16_t abi_entries; /* what it was built against */
	void (*setup)(const dynalib_t *lib);
	void (*loop)(const dynalib_t *lib);
} application_t;

/* The application named in an installed user part's image info, or NULL. */
const application_t *application_find(const char *name);

#endif
