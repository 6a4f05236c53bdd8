#include "planning-set.h"

#include "events.h"
#include "semver.h"

static void
planning_set_clear(gpointer data)
{
	healer_module_inventory_free(((HealerPlanningSet *)data)->inventory);
}

HealerPlanningSet *
healer_planning_set_ref(HealerPlanningSet *set)
{
	return g_rc_box_acquire(set);
}

void
healer_planning_set_unref(HealerPlanningSet *set)
{
	g_rc_box_release_full(set, planning_set_clear);
}

/* The store's modules the trust admits, read again from their files. */
static void
add_stored(HealerModuleInventory *inventory, HealerStore *store, HealerTrust *trust)
{
	g_autoptr(GPtrArray) entries = healer_store_list(store);

	for (guint i = 0; i < entries->len; i++) {
		const HealerStoreEntry *s = g_ptr_array_index(entries, i);
		g_autoptr(GError) error = NULL;
		g_autofree char *why = NULL;
		HealerInventoryEntry *e;

		/* Stored before healerd checked catalogs, or its catalog's key is no longer trusted: not used. */
		if (trust != NULL && !healer_trust_admits(trust, s->sha256, s->size, NULL, &why)) {
			g_debug("store module %s is not planned with: it %s", s->sha256, why);
			continue;
		}
		e = healer_inventory_entry_new_from_file(s->path, NULL, &error);
		if (e == NULL) {
			healer_emit(HEALER_EVENT_STORE_REJECTED, NULL, NULL, s->path, -1, G_LOG_LEVEL_WARNING,
			            "store module %s is unusable: %s", s->sha256, error->message);
			continue;
		}
		if (s->release != NULL) {
			g_auto(GStrv) range = g_strsplit(s->release, "..", 2);
			e->release = g_strdup(s->release);
			/* A prerelease only if every release that ships it is one. */
			e->prerelease = healer_semver_is_prerelease(range[0]) &&
			                (range[1] == NULL || healer_semver_is_prerelease(range[1]));
		}
		healer_module_inventory_add(inventory, e);
	}
}

/* What the trusted catalogs list and the store lacks: it can be fetched, so plans may use it. */
static void
add_fetchable(HealerModuleInventory *inventory, HealerStore *store, HealerTrust *trust, const char *upstream_url)
{
	g_autoptr(GPtrArray) held = healer_trust_list_catalogs(trust);
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	for (guint c = 0; c < held->len; c++) {
		const HealerTrustedCatalog *tc = g_ptr_array_index(held, c);
		for (guint i = 0; i < tc->catalog->modules->len; i++) {
			const HealerCatalogModule *m = g_ptr_array_index(tc->catalog->modules, i);
			g_autofree char *sha = healer_sha256_to_hex(m->sha256);
			HealerInventoryEntry *e;

			if (healer_store_lookup(store, sha) != NULL || !g_hash_table_add(seen, g_strdup(sha)))
				continue;
			e = healer_catalog_module_to_inventory_entry(m, NULL);
			g_free(e->path);
			e->path = g_strdup_printf("%s/%s", upstream_url, m->path);
			healer_module_inventory_add(inventory, e);
		}
	}
}

HealerPlanningSet *
healer_planning_set_new(HealerStore *store, HealerTrust *trust, const char *upstream_url)
{
	HealerPlanningSet *set = g_rc_box_new0(HealerPlanningSet);

	set->inventory = healer_module_inventory_new("the module store");
	add_stored(set->inventory, store, trust);
	if (upstream_url != NULL && trust != NULL)
		add_fetchable(set->inventory, store, trust, upstream_url);
	return set;
}
