/* A parsed module as the JSON object `healerctl inspect --json` prints. */
#pragma once

#include <json-c/json.h>

#include "module-reader.h"

G_BEGIN_DECLS

/* New reference; `file` may be NULL. */
json_object *healer_module_to_json(const HealerModule *module, const char *file);

G_END_DECLS
