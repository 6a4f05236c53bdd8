/* The applications this firmware tree builds, by the name their image carries. */
#include <string.h>

#include "app.h"

extern const application_t app_tinker;
extern const application_t app_travel_in_time;
extern const application_t app_heartbeat;
extern const application_t app_sensor;

static const application_t *const applications[] = {&app_tinker, &app_heartbeat, &app_travel_in_time, &app_sensor};

const application_t *
application_find(const char *name)
{
	for (size_t i = 0; i < sizeof applications / sizeof applications[0]; i++) {
		if (strcmp(applications[i]->name, name) == 0)
			return applications[i];
	}
	return NULL;
}
