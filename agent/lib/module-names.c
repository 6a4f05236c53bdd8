#include "module-names.h"

/*
 * Platform ids as Particle's device constants define them; healerd's own
 * host simulator uses the "gcc" id (3), the id Device OS gives its host
 * build, so real ids keep their meaning.
 */
static const HealerPlatform platforms[] = {
        {0, "core", 1},   {3, "gcc", 0},    {6, "photon", 2},     {8, "p1", 2},       {10, "electron", 2},
        {12, "argon", 3}, {13, "boron", 3}, {14, "xenon", 3},     {15, "esomx", 3},   {22, "asom", 3},
        {23, "bsom", 3},  {24, "xsom", 3},  {25, "b5som", 3},     {26, "tracker", 3}, {28, "trackerm", 4},
        {32, "p2", 4},    {35, "msom", 4},  {37, "electron2", 3}, {38, "sulu", 4},    {103, "bluz", 0},
};

const HealerPlatform *
healer_platform_lookup(guint16 id)
{
	for (gsize i = 0; i < G_N_ELEMENTS(platforms); i++) {
		if (platforms[i].id == id)
			return &platforms[i];
	}
	return NULL;
}

const HealerPlatform *
healer_platform_lookup_name(const char *name)
{
	for (gsize i = 0; i < G_N_ELEMENTS(platforms); i++) {
		if (g_ascii_strcasecmp(platforms[i].name, name) == 0)
			return &platforms[i];
	}
	return NULL;
}

static const struct {
	const char *name;
	const char *describe_char;
} functions[] = {
        [MODULE_FUNCTION_NONE] = {"none", "n"},
        [MODULE_FUNCTION_RESOURCE] = {"resource", "r"},
        [MODULE_FUNCTION_BOOTLOADER] = {"bootloader", "b"},
        [MODULE_FUNCTION_MONO_FIRMWARE] = {"monolithic", "m"},
        [MODULE_FUNCTION_SYSTEM_PART] = {"system-part", "s"},
        [MODULE_FUNCTION_USER_PART] = {"user-part", "u"},
        [MODULE_FUNCTION_SETTINGS] = {"settings", "_"},
        [MODULE_FUNCTION_NCP_FIRMWARE] = {"ncp", "c"},
        [MODULE_FUNCTION_RADIO_STACK] = {"radio-stack", "a"},
        [MODULE_FUNCTION_ASSET] = {"asset", "t"},
};

const char *
healer_module_function_to_string(guint function)
{
	if (function >= G_N_ELEMENTS(functions))
		return NULL;
	return functions[function].name;
}

const char *
healer_module_function_to_describe_char(guint function)
{
	if (function >= G_N_ELEMENTS(functions))
		return NULL;
	return functions[function].describe_char;
}

int
healer_module_function_from_string(const char *name)
{
	for (guint i = 0; i < G_N_ELEMENTS(functions); i++) {
		if (g_strcmp0(functions[i].name, name) == 0)
			return (int)i;
	}
	/* Describe characters, except "_", which two functions share. */
	for (guint i = 0; i < G_N_ELEMENTS(functions); i++) {
		if (g_strcmp0(name, "_") != 0 && g_strcmp0(functions[i].describe_char, name) == 0)
			return (int)i;
	}
	return -1;
}

const char *
healer_module_store_to_string(guint store)
{
	switch (store) {
	case MODULE_STORE_MAIN:
		return "main";
	case MODULE_STORE_FACTORY:
		return "factory";
	case MODULE_STORE_BACKUP:
		return "backup";
	case MODULE_STORE_SCRATCHPAD:
		return "scratchpad";
	default:
		return NULL;
	}
}

char *
healer_module_flags_to_string(guint flags)
{
	static const struct {
		guint bit;
		const char *name;
	} names[] = {
	        {MODULE_FLAG_DROP_MODULE_INFO, "DROP_MODULE_INFO"},
	        {MODULE_FLAG_COMPRESSED, "COMPRESSED"},
	        {MODULE_FLAG_COMBINED, "COMBINED"},
	        {MODULE_FLAG_ENCRYPTED, "ENCRYPTED"},
	        {MODULE_FLAG_PREFIX_EXTENSIONS, "PREFIX_EXTENSIONS"},
	};
	g_autoptr(GString) out = g_string_new(NULL);

	if (flags == 0)
		return g_strdup("none");
	for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
		if (flags & names[i].bit)
			g_string_append_printf(out, "%s%s", out->len ? "|" : "", names[i].name);
	}
	if (flags & ~MODULE_FLAGS_KNOWN)
		g_string_append_printf(out, "%sunknown 0x%02x", out->len ? "|" : "", flags & ~MODULE_FLAGS_KNOWN);
	return g_string_free(g_steal_pointer(&out), FALSE);
}

const char *
healer_module_extension_type_to_string(guint type)
{
	switch (type) {
	case MODULE_EXTENSION_END:
		return "end";
	case MODULE_EXTENSION_PRODUCT_DATA:
		return "product-data";
	case MODULE_EXTENSION_DYNAMIC_LOCATION:
		return "dynamic-location";
	case MODULE_EXTENSION_DEPENDENCY:
		return "dependency";
	case MODULE_EXTENSION_HASH:
		return "hash";
	case MODULE_EXTENSION_NAME:
		return "name";
	case MODULE_EXTENSION_ASSET_DEPENDENCY:
		return "asset-dependency";
	case MODULE_EXTENSION_SECURITY_MODE:
		return "security-mode";
	case MODULE_EXTENSION_ASSET_TYPE:
		return "asset-type";
	case MODULE_EXTENSION_INVALID:
		return "invalid";
	default:
		return NULL;
	}
}
