#include "engine.h"

#include <json-c/json.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <unistd.h>

#include "backend.h"
#include "caller-file.h"
#include "device.h"
#include "healer-error.h"
#include "job-file.h"
#include "events.h"
#include "module-names.h"
#include "resolver.h"
#include "semver.h"

typedef struct _Job Job;

/*
 * One device a backend gave us, and what the engine makes of it.  A device object is one attachment
 * (a port): what answers there may change.  The device the faces see is `id`, set when it is announced
 * (it reported its state and no other attachment holds that id); a device that then says another id is
 * another device: the first is detached (its object, its job) before the second is announced.
 */
typedef struct {
	HealerEngine *engine;
	HealerBackend *backend;  /* where the device came from */
	const char *port;        /* the device's (kept with it, for the records after it went) */
	const char *physical_id; /* the device's: where it is plugged (NULL: the family does not know) */
	HealerDevice *device;    /* a reference */
	char *id;                /* the announced device's id, or NULL */
	char *conflict_id;       /* an id refused here because another port holds it (logged once) */
	HealerStatus status;
	char *detail;       /* why blocked/failed/in safe mode, or "step 2 of 5" */
	Job *job;           /* borrowed from engine->jobs while a job runs on this device */
	gboolean announced; /* the faces were told it exists */
	char *last_error;
	guint64 last_heal;
	gboolean fetching; /* its plan waits for modules from upstream */
} Attachment;

/*
 * A heal.  Keyed by device id, not port: a device that goes away mid-heal
 * (unplugged, reset into another port) picks its job up wherever it
 * returns, and so does a job read back after healerd restarts.
 */
struct _Job {
	HealerEngine *engine;
	char *device_id;
	HealerPlan *plan;
	guint step;
	guint attempt;
	gboolean active; /* holds a job slot */
	guint last_progress;
	gboolean resumed;
	guint retry_source;
	Attachment *attachment;
	/* The planning set the plan's steps point into: kept while the plan lives, whatever the store does. */
	HealerPlanningSet *plan_set;
	/* Installing an application rather than healing: its entry, and who to tell. */
	HealerInventoryEntry *app;
	HealerEngineDoneFunc done_func;
	gpointer done_user_data;
	/* The job file write the first step waits for (0: none): no device is touched before it is on disk. */
	guint64 awaiting_seq;
	/* The SHA-256 (hex) of the store module the step in flight holds (healer_supply_acquire_module()), or NULL. */
	char *module_sha;
	/*
	 * The step was installed on a device that re-enumerates after its reset: the job keeps its job
	 * slot and waits (up to the reset timeout) for its device to come back, whatever it comes back as:
	 * a device reporting its id, or one at `physical_id` (where it was reset) whose family says its id
	 * changes across modes (job_awaiting_at()); `returned` once it has, while the step is checked.
	 * `other_id`: a device that came at `physical_id` meanwhile reporting another id (it was swapped).
	 */
	guint return_source;
	gboolean returned;
	char *physical_id;
	char *other_id;
	/*
	 * The device switched mode for the step instead of installing it (healer_device_mode_switch_new()):
	 * the return being awaited runs the step again.  `switched_step` is step + 1 of the last switch
	 * (0: none), so a second switch for one step fails the heal instead of going round.
	 */
	gboolean switching;
	guint switched_step;
};

struct _HealerEngine {
	HealerConfig *config;
	HealerSupply *supply; /* what plans are made from, and the modules they flash */
	GPtrArray *backends;  /* HealerBackend*, references */
	gboolean started;
	GHashTable *attachments; /* HealerDevice* -> Attachment* */
	GHashTable *by_id;       /* announced device id -> Attachment* */
	GHashTable *jobs;        /* device id -> Job* */
	GHashTable *returning;   /* physical id -> Job* waiting there for its device to come back after a reset */
	guint active_jobs;
	GQueue waiting; /* Attachment* waiting for a job slot */
	HealerJobWriter *job_writer;
	guint trim_source;
	HealerDeviceWatch *watch; /* the signals of every device, one handler each (not one per device) */
};

static void evaluate(Attachment *attachment);
static void run_step(Job *job);
static gboolean needs_heal(HealerDevice *device);
static Attachment *attachment_for_device(HealerEngine *self, const char *device_id);

const char *
healer_status_to_string(HealerStatus status)
{
	static const char *const names[] = {"attached", "identified", "healthy", "safe-mode", "queued",
	                                    "healing",  "blocked",    "failed",  "detached"};

	return status < G_N_ELEMENTS(names) ? names[status] : "unknown";
}

static void
update_notify_status(HealerEngine *self)
{
	g_autofree char *summary = healer_engine_summary(self);

	healer_emit_event(.kind = HEALER_EVENT_STATUS, .reason = summary);
}

static void
attachment_changed(Attachment *attachment)
{
	if (attachment->announced)
		healer_emit_event(.kind = HEALER_EVENT_DEVICE_CHANGED, .device_id = attachment->id,
		                  .port = attachment->port);
}

static void
set_status(Attachment *attachment, HealerStatus status, const char *detail)
{
	attachment->status = status;
	g_free(attachment->detail);
	attachment->detail = g_strdup(detail);
	if (status == HEALER_STATUS_BLOCKED || status == HEALER_STATUS_FAILED) {
		g_free(attachment->last_error);
		attachment->last_error = g_strdup(detail);
	}
	update_notify_status(attachment->engine);
	attachment_changed(attachment);
}

/*
 * The supply makes the modules of `plan` local (healer_supply_make_local()).
 * TRUE when the plan can run now; otherwise the device waits for them
 * (status healing while they are fetched, blocked with the reason when one
 * cannot come: a fetch failed and waits for its retry, or there is no upstream).
 */
static gboolean
plan_is_local(Attachment *attachment, const HealerPlan *plan)
{
	HealerEngine *self = attachment->engine;
	g_autoptr(GArray) answers = healer_supply_make_local(self->supply, plan);
	g_autoptr(GString) missing = g_string_new(NULL);
	g_autoptr(GString) problems = g_string_new(NULL);
	guint64 bytes = 0;
	guint n = 0;

	for (guint i = 0; i < plan->steps->len; i++) {
		const HealerPlanStep *step = &g_array_index(plan->steps, HealerPlanStep, i);
		const HealerSupplyStep *answer = &g_array_index(answers, HealerSupplyStep, i);
		g_autofree char *label = NULL;

		if (answer->state == HEALER_SUPPLY_STEP_READY)
			continue;
		label = healer_inventory_entry_to_string(step->entry);
		n++;
		bytes += step->bytes;
		g_string_append_printf(missing, "%s%s", missing->len > 0 ? ", " : "", label);
		if (answer->state == HEALER_SUPPLY_STEP_BLOCKED)
			g_string_append_printf(problems, "%s%s: %s", problems->len > 0 ? "; " : "", label,
			                       answer->reason);
	}
	if (n == 0) {
		attachment->fetching = FALSE;
		return TRUE;
	}
	attachment->fetching = TRUE;
	if (problems->len > 0) {
		/* Without an upstream nothing was fetched: only a stale planning set gets here. */
		g_autofree char *detail =
		        healer_supply_get_upstream(self->supply) == NULL
		                ? g_strdup_printf("needs %s, which the store lacks and no upstream is configured to "
		                                  "fetch; import a bundle that has %s (healerctl import)",
		                                  missing->str, n == 1 ? "it" : "them")
		                : g_strdup_printf("needs %s from upstream, which failed: %s; or import a bundle that "
		                                  "has %s (healerctl import)",
		                                  missing->str, problems->str, n == 1 ? "it" : "them");
		if (attachment->status != HEALER_STATUS_BLOCKED || g_strcmp0(attachment->detail, detail) != 0)
			healer_emit_reason(HEALER_EVENT_HEAL_BLOCKED, attachment->id, attachment->port, -1,
			                   G_LOG_LEVEL_WARNING, detail, "waiting: %s", detail);
		set_status(attachment, HEALER_STATUS_BLOCKED, detail);
	} else {
		g_autofree char *detail =
		        g_strdup_printf("fetching %u module(s), %" G_GUINT64_FORMAT " bytes, from upstream: %s", n,
		                        bytes, missing->str);
		if (g_strcmp0(attachment->detail, detail) != 0)
			healer_emit(HEALER_EVENT_HEAL_STARTED, attachment->id, attachment->port, NULL, -1,
			            G_LOG_LEVEL_INFO, "%s", detail);
		set_status(attachment, HEALER_STATUS_HEALING, detail);
	}
	return FALSE;
}

/* ---- jobs ------------------------------------------------------------- */

/* The job no longer flashes its module: the last job to let go of it frees it. */
static void
job_release_module(Job *job)
{
	g_autofree char *sha = g_steal_pointer(&job->module_sha);

	if (sha != NULL)
		healer_supply_release_module(job->engine->supply, sha);
}

/* The job no longer waits for its device to come back after a reset (it came back, or the wait failed). */
static void
job_end_return_wait(Job *job)
{
	GHashTable *returning = job->engine->returning;

	if (job->return_source != 0) {
		g_source_remove(job->return_source);
		job->return_source = 0;
	}
	job->switching = FALSE;
	if (job->physical_id != NULL && returning != NULL && g_hash_table_lookup(returning, job->physical_id) == job)
		g_hash_table_remove(returning, job->physical_id);
	g_clear_pointer(&job->other_id, g_free);
}

static void
job_free(Job *job)
{
	if (job->retry_source != 0)
		g_source_remove(job->retry_source);
	job_end_return_wait(job);
	job_release_module(job);
	g_clear_pointer(&job->plan, healer_plan_free);
	g_clear_pointer(&job->plan_set, healer_planning_set_unref);
	g_clear_pointer(&job->app, healer_inventory_entry_free);
	g_free(job->physical_id);
	g_free(job->device_id);
	g_free(job);
}

static char *
step_label(const HealerPlanStep *step)
{
	const HealerInventoryEntry *e = step->entry;
	const char *f = healer_module_function_to_string(e->function);

	return g_strdup_printf("%s %u v%u%s%s%s", f ? f : "?", e->index, e->version, e->release ? " (" : "",
	                       e->release ? e->release : "", e->release ? ")" : "");
}

/*
 * The heal on disk, so a healerd killed mid-heal resumes it on restart:
 * queued for a worker (an fsync never stalls the links), written when the
 * heal starts and when an attempt fails.  Not after each step: a resumed
 * heal plans again from what the device describes (a step done shows
 * there), so nothing on disk would read the step; the file's existence is
 * what matters, and "step" says where the heal stood when it was written.
 */
static guint64
persist(Job *job)
{
	json_object *obj = json_object_new_object();
	json_object *steps = json_object_new_array();
	guint64 seq;

	for (guint i = 0; job->plan && i < job->plan->steps->len; i++) {
		const HealerPlanStep *s = &g_array_index(job->plan->steps, HealerPlanStep, i);
		json_object *o = json_object_new_object();
		g_autofree char *sha = healer_sha256_to_hex(s->entry->sha256);
		json_object_object_add(o, "sha256", json_object_new_string(sha));
		json_object_object_add(o, "function", json_object_new_int(s->entry->function));
		json_object_object_add(o, "index", json_object_new_int(s->entry->index));
		json_object_object_add(o, "version", json_object_new_int(s->entry->version));
		json_object_array_add(steps, o);
	}
	json_object_object_add(obj, "device_id", json_object_new_string(job->device_id));
	json_object_object_add(obj, "steps", steps);
	json_object_object_add(obj, "step", json_object_new_int((int)job->step));
	json_object_object_add(obj, "attempt", json_object_new_int((int)job->attempt));
	seq = healer_job_writer_save(job->engine->job_writer, job->device_id, obj);
	json_object_put(obj);
	return seq;
}

static void
release_job_slot(Job *job)
{
	HealerEngine *self = job->engine;

	if (!job->active)
		return;
	job->active = FALSE;
	self->active_jobs--;
	/* Whoever waited longest gets the job slot. */
	while (!g_queue_is_empty(&self->waiting)) {
		Attachment *next = g_queue_pop_head(&self->waiting);
		if (g_hash_table_lookup(self->attachments, next->device) == next) {
			evaluate(next);
			break;
		}
	}
}

/*
 * Once no job runs, the heap goes back to its idle size: a heal's frames
 * and modules are freed by then, but glibc keeps freed memory in its arenas
 * (3.9 MiB after a 64-device heal).  From an idle, once per batch of ends.
 */
static gboolean
on_trim(gpointer user_data)
{
	HealerEngine *self = user_data;

	self->trim_source = 0;
#ifdef __GLIBC__
	if (self->active_jobs == 0) {
		gint64 start = g_get_monotonic_time();
		malloc_trim(0);
		g_debug("no heal runs: heap trimmed in %" G_GINT64_FORMAT " us", g_get_monotonic_time() - start);
	}
#endif
	return G_SOURCE_REMOVE;
}

static void
schedule_trim(HealerEngine *self)
{
	if (self->active_jobs == 0 && self->trim_source == 0)
		self->trim_source = g_idle_add_full(G_PRIORITY_LOW, on_trim, self, NULL);
}

static void
end_job_as(Job *job, const GError *error, const char *success_reason)
{
	HealerEngine *self = job->engine;
	HealerEngineDoneFunc func = job->done_func;
	gpointer user_data = job->done_user_data;
	g_autofree char *id = g_strdup(job->device_id);

	job->done_func = NULL;
	if (job->attachment != NULL) {
		job->attachment->job = NULL;
		job->attachment->last_heal = (guint64)g_get_real_time() / G_USEC_PER_SEC;
		if (error == NULL)
			g_clear_pointer(&job->attachment->last_error, g_free);
	}
	/* Queued behind any write of this job still pending: the file cannot come back after it. */
	healer_job_writer_remove(self->job_writer, job->device_id);
	/* Gone from the table before its job slot starts a waiting device's heal (which may be this device's). */
	g_hash_table_steal(self->jobs, job->device_id);
	release_job_slot(job);
	job_free(job);
	schedule_trim(self);
	healer_emit_event(.kind = HEALER_EVENT_HEAL_FINISHED, .device_id = id, .success = error == NULL,
	                  .reason = error ? error->message : success_reason);
	if (func != NULL)
		func(self, id, error, user_data);
}

static void
end_job_with(Job *job, const GError *error)
{
	end_job_as(job, error, "the application runs");
}

static void
end_job(Job *job)
{
	end_job_with(job, NULL);
}

static gboolean
on_retry(gpointer user_data)
{
	Job *job = user_data;

	job->retry_source = 0;
	if (job->attachment != NULL)
		evaluate(job->attachment);
	return G_SOURCE_REMOVE;
}

/* The heal ends failed, saying `detail`. */
static void
job_give_up(Job *job, const char *detail)
{
	Attachment *attachment = job->attachment;
	g_autoptr(GError) error = g_error_new(HEALER_ERROR, HEALER_ERROR_FAILED, "%s", detail);

	healer_emit_reason(HEALER_EVENT_HEAL_FAILED, job->device_id, attachment ? attachment->port : NULL,
	                   (int)job->step, G_LOG_LEVEL_WARNING, detail, "heal failed: %s", detail);
	if (attachment != NULL)
		set_status(attachment, HEALER_STATUS_FAILED, detail);
	end_job_with(job, error);
}

/*
 * The device refused the step in a way no retry changes (HEALER_ERROR_PERMISSION_DENIED from its
 * install: a protected device, updates disabled by its application): the heal ends at once, with
 * the family's words of what the technician can do.
 */
static void
job_refused(Job *job, const char *why)
{
	g_autofree char *detail = g_strdup_printf("%s (not retried: the device refuses it until that changes)", why);

	job->attempt++;
	job_release_module(job);
	job_end_return_wait(job);
	job_give_up(job, detail);
}

static void
job_failed(Job *job, const char *why)
{
	HealerEngine *self = job->engine;
	Attachment *attachment = job->attachment;
	guint delay;

	job->attempt++;
	job_release_module(job);
	job_end_return_wait(job);
	/*
	 * The job slot is released last (here by end_job_with()): releasing it starts a waiting device's
	 * heal, which must find this job as it ends up, not half failed.
	 */
	if (job->attempt >= self->config->max_attempts) {
		g_autofree char *detail = g_strdup_printf("%s (gave up after %u attempts)", why, job->attempt);
		job_give_up(job, detail);
		return;
	}
	delay = healer_config_retry_delay(self->config, job->attempt);
	persist(job);
	healer_emit_reason(HEALER_EVENT_HEAL_FAILED, job->device_id, attachment ? attachment->port : NULL,
	                   (int)job->step, G_LOG_LEVEL_WARNING, why, "heal attempt %u failed: %s; retrying in %u s",
	                   job->attempt, why, delay);
	if (attachment != NULL) {
		g_autofree char *detail = g_strdup_printf("%s; retrying in %u s", why, delay);
		set_status(attachment, HEALER_STATUS_FAILED, detail);
	}
	job->retry_source = g_timeout_add_seconds(delay, on_retry, job);
	release_job_slot(job);
	schedule_trim(self);
}

/* Whether the device now runs its application with every dependency met. */
static gboolean
application_runs(HealerDevice *device)
{
	HealerDeviceHealth health;

	healer_device_get_health(device, &health);
	return health.running && health.has_app && health.app_valid;
}

/* 0..100 over the whole plan: the bytes of the steps done and of the one in flight. */
static guint
job_progress(Job *job)
{
	guint64 done = 0;
	guint64 acked = 0, total = 0;

	if (job->plan == NULL || job->plan->bytes == 0)
		return 0;
	for (guint i = 0; i < job->step && i < job->plan->steps->len; i++)
		done += g_array_index(job->plan->steps, HealerPlanStep, i).bytes;
	/* Only a transfer in flight counts: a finished one is already in the steps done. */
	if (job->attachment != NULL && job->attachment->device != NULL &&
	    healer_device_is_busy(job->attachment->device)) {
		healer_device_get_progress(job->attachment->device, &acked, &total);
		done += acked;
	}
	return (guint)MIN(100, done * 100 / job->plan->bytes);
}

/* What the wait was for, and how long: the id (on any port) and the physical id where it was reset. */
static gboolean
on_return_timeout(gpointer user_data)
{
	Job *job = user_data;
	const HealerPlanStep *step = &g_array_index(job->plan->steps, HealerPlanStep, job->step);
	g_autofree char *label = step_label(step);
	g_autofree char *where =
	        job->physical_id != NULL ? g_strdup_printf(" (physical id %s)", job->physical_id) : g_strdup("");
	g_autofree char *other = job->other_id != NULL ? g_strdup_printf("; device %s came at %s instead",
	                                                                 job->other_id, job->physical_id)
	                                               : g_strdup("");
	g_autofree char *why = g_strdup_printf("installing %s: device %s%s did not come back within %u s%s", label,
	                                       job->device_id, where, job->engine->config->reset_timeout_s, other);

	job->return_source = 0;
	job_failed(job, why);
	return G_SOURCE_REMOVE;
}

/*
 * The step is staged and `device` resets: the job waits for it to come back, by its id on any port and
 * by the physical id it leaves (where a device whose family says its id changes across modes is taken
 * for it).  A later wait at the same physical id takes it over: the device there last is the one to wait for.
 */
static void
job_await_return(Job *job, HealerDevice *device)
{
	const char *physical_id = healer_device_get_physical_id(device);

	job_end_return_wait(job);
	g_free(job->physical_id);
	job->physical_id = g_strdup(physical_id);
	if (physical_id != NULL)
		g_hash_table_replace(job->engine->returning, g_strdup(physical_id), job);
	job->return_source = g_timeout_add_seconds(job->engine->config->reset_timeout_s, on_return_timeout, job);
}

static void
on_step_installed(HealerDevice *device, const GError *error, gpointer user_data)
{
	Job *job = user_data;
	const HealerPlanStep *step = &g_array_index(job->plan->steps, HealerPlanStep, job->step);
	guint16 now = 0;
	g_autofree char *label = step_label(step);

	job_release_module(job);
	if (healer_device_error_is_mode_switch(error) && job->switched_step == job->step + 1) {
		g_autofree char *why = g_strdup_printf(
		        "installing %s: the device switched mode for it twice (%s); it installs in neither mode", label,
		        error->message);
		job_failed(job, why);
		return;
	}
	if (healer_device_error_is_mode_switch(error)) {
		/* Nothing written: it comes back in the mode that takes the step, which runs again there. */
		healer_emit(HEALER_EVENT_NOTE, job->device_id, healer_device_get_port(device), label,
		            (int)job->step + 1, G_LOG_LEVEL_INFO, "installing %s: %s", label, error->message);
		job->switched_step = job->step + 1;
		job_await_return(job, device);
		job->switching = TRUE;
		return;
	}
	if (g_error_matches(error, HEALER_ERROR, HEALER_ERROR_PERMISSION_DENIED)) {
		g_autofree char *why = g_strdup_printf("installing %s: %s", label, error->message);
		job_refused(job, why);
		return;
	}
	if (error != NULL) {
		g_autofree char *why = g_strdup_printf("installing %s: %s", label, error->message);
		job_failed(job, why);
		return;
	}
	/* Staged and resetting: it reports its state once back, as whatever device it enumerates as. */
	if (healer_device_has_flag(device, HEALER_DEVICE_FLAG_REENUMERATES_AFTER_RESET) &&
	    !healer_device_has_flag(device, HEALER_DEVICE_FLAG_INSTALL_NEEDS_RESET) && !job->returned) {
		job_await_return(job, device);
		return;
	}
	job->returned = FALSE;
	/* The device says what it runs now: the step must show. */
	if (!healer_device_lookup_module(device, step->entry->function, step->entry->index, &now) ||
	    now != step->entry->version) {
		g_autofree char *why = g_strdup_printf("%s did not take effect", label);
		job_failed(job, why);
		return;
	}
	healer_emit(HEALER_EVENT_MODULE_INSTALLED, job->device_id, healer_device_get_port(device), label,
	            (int)job->step + 1, G_LOG_LEVEL_INFO, "installed %s (step %u of %u)", label, job->step + 1,
	            job->plan->steps->len);
	job->step++;
	run_step(job);
}

static void
run_step(Job *job)
{
	HealerEngine *self = job->engine;
	Attachment *attachment = job->attachment;
	const HealerPlanStep *step;
	GBytes *module;
	g_autoptr(GError) error = NULL;
	g_autofree char *sha = NULL, *label = NULL, *detail = NULL;

	if (attachment == NULL || attachment->device == NULL)
		return; /* it went away: the job waits for it to come back */
	if (job->step >= job->plan->steps->len) {
		/*
		 * Written in place (a bootloader): its dependencies are met now, and it boots what it holds
		 * once reset, which is asked for once, here.  Whether the application then runs is for the
		 * family serving it in that mode to say (a Particle device leaves DFU for normal mode).
		 */
		if (healer_device_has_flag(attachment->device, HEALER_DEVICE_FLAG_INSTALL_NEEDS_RESET) &&
		    !needs_heal(attachment->device)) {
			HealerDevice *device = attachment->device;
			healer_emit(HEALER_EVENT_HEAL_SUCCEEDED, job->device_id, attachment->port, NULL, -1,
			            G_LOG_LEVEL_INFO,
			            "heal succeeded: %u module(s), %" G_GUINT64_FORMAT
			            " bytes; its dependencies are met, resetting it to start its application",
			            job->plan->steps->len, job->plan->bytes);
			set_status(attachment, HEALER_STATUS_HEALTHY, "resetting to start its application");
			/* Reset first: the device is busy leaving, not judged again in the mode it leaves. */
			healer_device_reset(device);
			end_job_as(job, NULL, "its dependencies are met; reset to start its application");
			return;
		}
		if (!application_runs(attachment->device)) {
			job_failed(job, "every module is installed but the application does not run");
			return;
		}
		healer_emit(HEALER_EVENT_HEAL_SUCCEEDED, job->device_id, attachment->port, NULL, -1, G_LOG_LEVEL_INFO,
		            "heal succeeded: %u module(s), %" G_GUINT64_FORMAT " bytes; the application runs",
		            job->plan->steps->len, job->plan->bytes);
		set_status(attachment, HEALER_STATUS_HEALTHY, NULL);
		end_job(job);
		return;
	}
	step = &g_array_index(job->plan->steps, HealerPlanStep, job->step);
	sha = healer_sha256_to_hex(step->entry->sha256);
	label = step_label(step);
	job_release_module(job);
	/* One verified copy per module, shared by every device flashing it (checked when first read). */
	module = healer_supply_acquire_module(self->supply, sha, &error);
	if (module == NULL) {
		g_autofree char *why =
		        g_strdup_printf("module %s (%s) unreadable from the store: %s", label, sha, error->message);
		healer_supply_drop_planning_set(self->supply);
		job_failed(job, why);
		return;
	}
	job->module_sha = g_steal_pointer(&sha);
	detail = g_strdup_printf("step %u of %u: %s", job->step + 1, job->plan->steps->len, label);
	set_status(attachment, HEALER_STATUS_HEALING, detail);
	/* The store's name of the module is its SHA-256: the device need not hash it again. */
	{
		HealerDeviceModule m = {.bytes = module,
		                        .sha256 = step->entry->sha256,
		                        .function = step->entry->function,
		                        .index = step->entry->index,
		                        .version = step->entry->version};
		healer_device_install_async(attachment->device, &m, on_step_installed, job);
	}
}

static Job *
job_for(HealerEngine *self, const char *id)
{
	Job *job = g_hash_table_lookup(self->jobs, id);

	if (job == NULL) {
		job = g_new0(Job, 1);
		job->engine = self;
		job->device_id = g_strdup(id);
		g_hash_table_insert(self->jobs, job->device_id, job);
	}
	return job;
}

/* Plans from what the device says now, and runs it. */
static void
start_job(Attachment *attachment, Job *job)
{
	HealerEngine *self = attachment->engine;
	const HealerDeviceState *state = healer_device_get_state(attachment->device);
	HealerGoal goal = {.kind = job->app ? HEALER_GOAL_INSTALL_APP : HEALER_GOAL_HEAL, .app = job->app};
	HealerResolverPolicy policy = {.allow_prerelease = self->config->allow_prerelease};
	g_autoptr(GError) error = NULL;
	HealerPlanningSet *planning;
	HealerPlan *plan;

	if (self->config->max_concurrent_jobs != 0 && self->active_jobs >= self->config->max_concurrent_jobs) {
		set_status(attachment, HEALER_STATUS_QUEUED, "waiting for a free heal job slot");
		if (g_queue_find(&self->waiting, attachment) == NULL)
			g_queue_push_tail(&self->waiting, attachment);
		return;
	}
	/*
	 * The job runs here now: a retry it waited for is moot, and it leaves any other attachment (its device
	 * seen on two ports), as this attachment leaves any other job (its device's id changed): an attachment and a
	 * job point at each other or at nothing, so neither is left pointing at a freed one.
	 */
	if (job->retry_source != 0) {
		g_source_remove(job->retry_source);
		job->retry_source = 0;
	}
	if (job->attachment != NULL && job->attachment != attachment && job->attachment->job == job)
		job->attachment->job = NULL;
	if (attachment->job != NULL && attachment->job != job && attachment->job->attachment == attachment)
		attachment->job->attachment = NULL;
	planning = healer_supply_get_planning_set(self->supply);
	plan = healer_resolve(state, planning->inventory, &goal, &policy, &error);
	if (plan != NULL && !plan_is_local(attachment, plan)) {
		/* The job waits, holding no job slot, until the store or upstream changes. */
		healer_plan_free(plan);
		job->attachment = NULL;
		attachment->job = NULL;
		return;
	}
	attachment->fetching = FALSE;
	if (plan == NULL) {
		const char *upstream_problem = healer_supply_get_upstream_problem(self->supply);
		g_autofree char *detail = upstream_problem != NULL
		                                  ? g_strdup_printf("%s; the upstream catalog could not be fetched: %s",
		                                                    error->message, upstream_problem)
		                                  : g_strdup(error->message);

		healer_emit_reason(HEALER_EVENT_HEAL_BLOCKED, job->device_id, attachment->port, -1, G_LOG_LEVEL_WARNING,
		                   detail,
		                   "cannot heal: %s; import a module bundle (healerctl import) or add it to a "
		                   "module directory",
		                   detail);
		set_status(attachment, HEALER_STATUS_BLOCKED, detail);
		/* Nothing to do until the store changes; the job's attempts are not spent on waiting. */
		job->attachment = NULL;
		attachment->job = NULL;
		end_job_with(job, error);
		return;
	}
	g_clear_pointer(&job->plan, healer_plan_free);
	g_clear_pointer(&job->plan_set, healer_planning_set_unref);
	job->plan = plan;
	job->plan_set = healer_planning_set_ref(planning);
	job->step = 0;
	job->switched_step = 0;
	job->attachment = attachment;
	attachment->job = job;
	job->active = TRUE;
	self->active_jobs++;
	healer_emit(HEALER_EVENT_HEAL_STARTED, job->device_id, attachment->port, NULL, -1, G_LOG_LEVEL_INFO,
	            "%s heal: %u module(s), %" G_GUINT64_FORMAT " bytes%s",
	            job->resumed ? "resuming the" : "starting the", plan->steps->len, plan->bytes,
	            plan->uses_prerelease ? " (uses a prerelease)" : "");
	for (guint i = 0; i < plan->steps->len; i++) {
		g_autofree char *label = step_label(&g_array_index(plan->steps, HealerPlanStep, i));
		healer_emit(HEALER_EVENT_HEAL_STEP, job->device_id, attachment->port, label, (int)i + 1,
		            G_LOG_LEVEL_DEBUG, "plan step %u: %s", i + 1, label);
	}
	job->resumed = FALSE;
	/*
	 * The first step waits until the job file is on disk (a worker writes
	 * it; the loop goes on): a healerd killed once a device was touched
	 * finds the heal on restart and resumes it, also with auto-heal off.
	 */
	job->awaiting_seq = persist(job);
	set_status(attachment, HEALER_STATUS_HEALING, "starting");
}

/* A job file write finished (see start_job()). */
static void
on_job_written(const char *device_id, guint64 seq, const GError *error, gpointer user_data)
{
	HealerEngine *self = user_data;
	Job *job = g_hash_table_lookup(self->jobs, device_id);
	Attachment *attachment = job != NULL ? job->attachment : NULL;

	if (error != NULL) {
		/* A job gone by now had its file's removal fail: the message says that much itself. */
		g_autofree char *why = job != NULL
		                               ? g_strdup_printf("cannot save the heal's progress: %s", error->message)
		                               : g_strdup(error->message);
		healer_emit_reason(HEALER_EVENT_HEAL_FAILED, device_id, attachment ? attachment->port : NULL,
		                   job ? (int)job->step : -1, G_LOG_LEVEL_WARNING, why, "%s", why);
		if (attachment != NULL) {
			g_free(attachment->last_error);
			attachment->last_error = g_steal_pointer(&why);
			attachment_changed(attachment);
		}
	}
	if (job == NULL || job->awaiting_seq == 0 || seq < job->awaiting_seq)
		return;
	job->awaiting_seq = 0;
	/* A heal that could not be saved still runs (as it always did): left alone, the device stays down. */
	if (job->active && attachment != NULL && attachment->job == job)
		run_step(job);
}

/* ---- judging a device -------------------------------------------------- */

static gboolean
needs_heal(HealerDevice *device)
{
	HealerDeviceHealth health;

	healer_device_get_health(device, &health);
	return health.has_app && health.app_dependencies_failed;
}

static void
evaluate(Attachment *attachment)
{
	HealerEngine *self = attachment->engine;
	HealerDevice *device = attachment->device;
	HealerDeviceHealth health;
	const char *id = attachment->id;
	Job *job;
	g_autofree char *detail = NULL;

	if (!attachment->announced || !healer_device_has_state(device) || healer_device_is_busy(device))
		return;
	healer_device_get_health(device, &health);
	job = g_hash_table_lookup(self->jobs, id);
	if (job != NULL && (job->active || job->retry_source != 0) && job->attachment == attachment)
		return; /* its job drives it; a retry timer is pending */
	if (job != NULL && job->active)
		return;

	if (!needs_heal(device)) {
		if (job != NULL) {
			/* A job was under way (or read back after a restart) and the device is whole now. */
			healer_emit(HEALER_EVENT_HEAL_SUCCEEDED, id, attachment->port, NULL, -1, G_LOG_LEVEL_INFO,
			            "heal succeeded: the device's application dependencies are met");
			end_job(job);
		}
		if (health.running) {
			set_status(attachment, HEALER_STATUS_HEALTHY, NULL);
		} else {
			detail = g_strdup_printf("%s, nothing to heal (%s)", health.mode, health.boot_reason);
			/* Reported, not healed: safe mode asked for, or no application, is not a missing module. */
			if (attachment->status != HEALER_STATUS_SAFE_MODE || g_strcmp0(attachment->detail, detail) != 0)
				healer_emit_reason(HEALER_EVENT_SAFE_MODE_DETECTED, id, attachment->port, -1,
				                   G_LOG_LEVEL_INFO, detail, "%s", detail);
			set_status(attachment, HEALER_STATUS_SAFE_MODE, detail);
		}
		return;
	}
	if (job == NULL && !self->config->auto_heal) {
		const char *why = "its application needs modules it lacks (auto-heal is off)";
		/* Said once, as with auto-heal on: here someone has to start the heal, so they must hear of it. */
		if (attachment->status != HEALER_STATUS_SAFE_MODE || g_strcmp0(attachment->detail, why) != 0)
			healer_emit_reason(HEALER_EVENT_SAFE_MODE_DETECTED, id, attachment->port, -1, G_LOG_LEVEL_INFO,
			                   why, "in safe mode: %s", why);
		set_status(attachment, HEALER_STATUS_SAFE_MODE, why);
		return;
	}
	if (job == NULL) {
		const char *why = "its application needs modules it lacks";
		healer_emit_reason(HEALER_EVENT_SAFE_MODE_DETECTED, id, attachment->port, -1, G_LOG_LEVEL_INFO, why,
		                   "in safe mode: %s", why);
	}
	start_job(attachment, job ? job : job_for(self, id));
}

/* ---- devices coming and going ----------------------------------------- */

static void attachment_free(Attachment *attachment);

/* The attachment's job lets go of the device (it stays, waiting for the device to come back). */
static void
release_attachment_job(Attachment *attachment)
{
	if (attachment->job != NULL && attachment->job->return_source != 0) {
		/* Its device re-enumerates after the reset: the job keeps its job slot and waits for the id. */
		attachment->job->attachment = NULL;
		attachment->job = NULL;
	} else if (attachment->job != NULL) {
		Job *job = attachment->job;
		job_release_module(job);
		release_job_slot(job);
		job->attachment = NULL;
		if (job->retry_source != 0) {
			g_source_remove(job->retry_source);
			job->retry_source = 0;
		}
		attachment->job = NULL;
	}
	g_queue_remove(&attachment->engine->waiting, attachment);
}

/*
 * The device announced on this port is no longer the one there (another device said HELLO): it is
 * detached as if unplugged (its object goes, its job waits for it), and the port starts over.
 */
static void
detach_identity(Attachment *attachment, const char *why)
{
	HealerEngine *self = attachment->engine;
	g_autofree char *id = NULL;

	if (attachment->id != NULL && g_hash_table_lookup(self->by_id, attachment->id) == attachment)
		g_hash_table_remove(self->by_id, attachment->id);
	id = g_steal_pointer(&attachment->id);
	if (!attachment->announced)
		return;
	attachment->announced = FALSE;
	healer_emit(HEALER_EVENT_DEVICE_DETACHED, id, attachment->port, NULL, -1, G_LOG_LEVEL_INFO, "detached: %s",
	            why);
	release_attachment_job(attachment);
	healer_emit_event(.kind = HEALER_EVENT_DEVICE_REMOVED, .device_id = id, .port = attachment->port);
	attachment->status = HEALER_STATUS_ATTACHED;
	attachment->fetching = FALSE;
	attachment->last_heal = 0;
	g_clear_pointer(&attachment->detail, g_free);
	g_clear_pointer(&attachment->last_error, g_free);
	update_notify_status(self);
}

/*
 * The job whose device this is, back in another mode, matched by where it is plugged (docs/architecture.md,
 * "How a returning device is matched"): the job waiting at its physical id, if its family says its id
 * changes across modes.  The id comes first: a device reporting an id the engine knows (a job's, or an
 * announced device's) is that device, wherever it is plugged, and is matched by id (announce()).
 */
static Job *
job_awaiting_at(Attachment *attachment)
{
	HealerEngine *self = attachment->engine;
	const char *reported = healer_device_get_id(attachment->device);

	if (attachment->physical_id == NULL ||
	    !healer_device_has_flag(attachment->device, HEALER_DEVICE_FLAG_ID_CHANGES_ACROSS_MODES))
		return NULL;
	if (reported != NULL &&
	    (g_hash_table_contains(self->jobs, reported) || g_hash_table_contains(self->by_id, reported)))
		return NULL;
	return g_hash_table_lookup(self->returning, attachment->physical_id);
}

/*
 * A device that says it is someone else came where a job waits for its device: the device there was
 * swapped (or a hub port reused).  It is not taken for the job's (the rest of the plan would go to it);
 * the job keeps waiting for its own, by id, and says so once.
 */
static void
note_other_device(Attachment *attachment, const char *reported)
{
	HealerEngine *self = attachment->engine;
	Job *job =
	        attachment->physical_id != NULL ? g_hash_table_lookup(self->returning, attachment->physical_id) : NULL;

	if (job == NULL || reported == NULL || g_str_equal(job->device_id, reported) ||
	    g_strcmp0(job->other_id, reported) == 0)
		return;
	g_free(job->other_id);
	job->other_id = g_strdup(reported);
	healer_emit(HEALER_EVENT_NOTE, reported, attachment->port, NULL, -1, G_LOG_LEVEL_WARNING,
	            "device %s came at %s, where device %s was reset, and is another device: the heal of %s "
	            "waits for it by its id (up to %u s after its reset)",
	            reported, attachment->physical_id, job->device_id, job->device_id, self->config->reset_timeout_s);
}

/*
 * Announces the device on the attachment, under the id it reports or the id of the device it came back as
 * (job_awaiting_at()), unless another port holds that id (the first port keeps it).
 */
static gboolean
announce(Attachment *attachment)
{
	HealerEngine *self = attachment->engine;
	HealerDevice *device = attachment->device;
	const char *reported = healer_device_get_id(device);
	Job *returning = job_awaiting_at(attachment);
	const char *id = returning != NULL ? returning->device_id : reported;
	g_autofree char *came_back_as = NULL;
	HealerDeviceHealth health;
	Attachment *holder;
	Job *saved;

	if (returning == NULL)
		note_other_device(attachment, reported);
	if (id == NULL) {
		/* It cannot say who it is, and no device is awaited where it is: it speaks for nobody. */
		g_debug("%s: reported no id, and no device is awaited at %s", attachment->port,
		        attachment->physical_id ? attachment->physical_id : "its (unknown) physical id");
		return FALSE;
	}
	holder = attachment_for_device(self, id);
	if (holder != NULL) {
		if (g_strcmp0(attachment->conflict_id, id) != 0) {
			healer_emit(HEALER_EVENT_DEVICE_CONFLICT, id, attachment->port, NULL, -1, G_LOG_LEVEL_WARNING,
			            "refused on %s: device %s is attached on %s, which keeps it (two devices "
			            "with one id: one of them is faulty or hostile)",
			            attachment->port, id, holder->port);
			g_free(attachment->conflict_id);
			attachment->conflict_id = g_strdup(id);
		}
		return FALSE;
	}
	g_clear_pointer(&attachment->conflict_id, g_free);
	attachment->id = g_strdup(id);
	g_hash_table_insert(self->by_id, attachment->id, attachment);
	healer_device_get_health(device, &health);
	if (g_strcmp0(id, reported) != 0)
		came_back_as = g_strdup_printf(" (back at %s after its reset, reporting %s%s)", attachment->physical_id,
		                               reported != NULL ? "id " : "no id", reported != NULL ? reported : "");
	healer_emit(HEALER_EVENT_DEVICE_ATTACHED, id, attachment->port, NULL, -1, G_LOG_LEVEL_INFO,
	            "attached on %s: platform %u, %s, reset reason %s%s", attachment->port,
	            healer_device_get_platform_id(device), health.boot_mode, health.reset_reason,
	            came_back_as != NULL ? came_back_as : "");
	set_status(attachment, HEALER_STATUS_IDENTIFIED, NULL);
	attachment->announced = TRUE;
	healer_emit_event(.kind = HEALER_EVENT_DEVICE_ADDED, .device_id = id, .port = attachment->port);
	saved = g_hash_table_lookup(self->jobs, id);
	if (saved != NULL && saved->return_source != 0 && saved->attachment == NULL) {
		/*
		 * Back after the reset of a step, as another device node (by its id, or at its physical id in
		 * another mode): the step is checked (judge_announced()).
		 */
		saved->attachment = attachment;
		attachment->job = saved;
	} else if (saved != NULL && !saved->active && saved->attachment == NULL) {
		/* A heal that lost its device (or healerd) picks up where the device is now. */
		saved->attachment = attachment;
		attachment->job = saved;
		saved->resumed = TRUE;
	}
	return TRUE;
}

/* An announced device reported its state: the step its job waited for is checked, or the device judged. */
static void
judge_announced(Attachment *attachment)
{
	if (attachment->job != NULL && attachment->job->return_source != 0) {
		/* The device a step was waiting for reported itself again (wherever it came back). */
		Job *job = attachment->job;
		gboolean switched = job->switching;
		job_end_return_wait(job);
		if (switched) {
			/* Back in the mode it switched to for the step: the step runs again there. */
			run_step(job);
			return;
		}
		job->returned = TRUE;
		on_step_installed(attachment->device, NULL, job);
		return;
	}
	if (attachment->job == NULL || !attachment->job->active)
		evaluate(attachment);
}

/*
 * `id` is free again (its device detached): a device refused for it elsewhere gets it now.  A device
 * that moved ports (a USB device enumerated again as ttyACM1 before ttyACM0 went) is refused while
 * the old port holds it, and must not stay refused once it is gone.
 */
static void
retry_conflicts(HealerEngine *self, const char *id)
{
	GHashTableIter iter;
	gpointer value;

	if (id == NULL || self->attachments == NULL)
		return;
	g_hash_table_iter_init(&iter, self->attachments);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		Attachment *attachment = value;
		/*
		 * conflict_id is the id it claimed (what it reports, or the id of the device it came back as);
		 * a device that reports another id since has had it cleared (on_identity_changed()).
		 */
		if (!attachment->announced && g_strcmp0(attachment->conflict_id, id) == 0 &&
		    healer_device_has_state(attachment->device) && announce(attachment)) {
			judge_announced(attachment);
			return;
		}
	}
}

/* The record of an attachment going: its device's, or the port's when no device was ever attached. */
static void
log_detached(Attachment *attachment, const char *what)
{
	if (attachment->announced)
		healer_emit(HEALER_EVENT_DEVICE_DETACHED, attachment->id, attachment->port, NULL, -1, G_LOG_LEVEL_INFO,
		            "%s", what);
	else
		healer_emit(HEALER_EVENT_NOTE, NULL, attachment->port, NULL, -1, G_LOG_LEVEL_INFO,
		            "%s: closed (the device there was never attached)", attachment->port);
}

/* Removes the device's attachment (the engine lets go of it); the id it held goes to a device refused for it. */
static void
forget_attachment(HealerEngine *self, HealerDevice *device)
{
	Attachment *attachment = g_hash_table_lookup(self->attachments, device);
	g_autofree char *id = attachment != NULL && attachment->announced ? g_strdup(attachment->id) : NULL;

	g_hash_table_remove(self->attachments, device);
	retry_conflicts(self, id);
}

/* The watch hears every device: the attachment of one this engine serves, else NULL. */
static Attachment *
attachment_of(HealerEngine *self, HealerDevice *device)
{
	return g_hash_table_lookup(self->attachments, device);
}

/*
 * Another id answers on the device (the first HELLO too): the device announced there before is gone.
 * The backend counts the ids after this (it may let the port go: device-removed follows).
 */
static void
on_identity_changed(HealerDevice *device, gpointer user_data)
{
	HealerEngine *self = user_data;
	Attachment *attachment = attachment_of(self, device);
	const char *id = healer_device_get_id(device);

	if (attachment == NULL)
		return;
	if (attachment->announced) {
		g_autofree char *why = g_strdup_printf("device %s answers on %s now", id, attachment->port);
		g_autofree char *old = g_strdup(attachment->id);
		detach_identity(attachment, why);
		retry_conflicts(self, old);
	}
	if (g_strcmp0(attachment->conflict_id, id) != 0)
		g_clear_pointer(&attachment->conflict_id, g_free);
}

static void
on_identified(HealerDevice *device, gpointer user_data)
{
	Attachment *attachment = attachment_of(user_data, device);

	if (attachment == NULL)
		return;
	if (!attachment->announced && !announce(attachment))
		return;
	judge_announced(attachment);
}

static void
on_device_log(HealerDevice *device, const char *text, gpointer user_data)
{
	Attachment *attachment = attachment_of(user_data, device);
	const char *id;

	if (attachment == NULL)
		return;
	id = attachment->id; /* NULL until announced: a device refused here speaks for nobody */
	/* The backend may limit what one attachment writes; the text is escaped by the family. */
	if (healer_backend_allow_record(attachment->backend, device, id))
		healer_emit(HEALER_EVENT_DEVICE_LOG, id, attachment->port, NULL, -1, G_LOG_LEVEL_INFO, "device%s%s: %s",
		            id ? "" : " on ", id ? "" : attachment->port, text);
}

static void
on_device_changed(HealerDevice *device, gpointer user_data)
{
	Attachment *attachment = attachment_of(user_data, device);

	if (attachment != NULL)
		attachment_changed(attachment);
}

static void
on_device_progress(HealerDevice *device, gpointer user_data)
{
	Attachment *attachment = attachment_of(user_data, device);
	const char *id;

	if (attachment == NULL)
		return;
	id = attachment->id;
	if (id != NULL && attachment->job != NULL && attachment->job->plan != NULL &&
	    attachment->job->step < attachment->job->plan->steps->len) {
		Job *job = attachment->job;
		const HealerPlanStep *step = &g_array_index(job->plan->steps, HealerPlanStep, job->step);
		guint progress = job_progress(job);
		/* One signal per percent, not one per acknowledgement. */
		if (progress != job->last_progress) {
			g_autofree char *label = step_label(step);
			job->last_progress = progress;
			healer_emit_event(.kind = HEALER_EVENT_HEAL_PROGRESS, .device_id = id, .port = attachment->port,
			                  .step = (int)job->step + 1, .total = job->plan->steps->len, .module = label,
			                  .progress = progress);
			attachment_changed(attachment);
		}
	}
}

static void
attachment_free(Attachment *attachment)
{
	if (attachment->announced)
		healer_emit_event(.kind = HEALER_EVENT_DEVICE_REMOVED, .device_id = attachment->id,
		                  .port = attachment->port);
	release_attachment_job(attachment);
	if (attachment->id != NULL && g_hash_table_lookup(attachment->engine->by_id, attachment->id) == attachment)
		g_hash_table_remove(attachment->engine->by_id, attachment->id);
	/* Out of the engine's table already: no more of its signals reach this attachment. */
	g_object_unref(attachment->device);
	g_free(attachment->detail);
	g_free(attachment->last_error);
	g_free(attachment->id);
	g_free(attachment->conflict_id);
	g_free(attachment);
}

/* A backend found a device: it is served (announced once it says who it is). */
static void
on_device_added(HealerBackend *backend, HealerDevice *device, gpointer user_data)
{
	HealerEngine *self = user_data;
	Attachment *attachment;

	g_return_if_fail(!g_hash_table_contains(self->attachments, device));
	attachment = g_new0(Attachment, 1);
	attachment->engine = self;
	attachment->backend = backend;
	attachment->port = healer_device_get_port(device);
	attachment->physical_id = healer_device_get_physical_id(device);
	attachment->status = HEALER_STATUS_ATTACHED;
	attachment->device = g_object_ref(device);
	/* From now on its signals reach the engine's watch (healer_engine_new()). */
	g_hash_table_insert(self->attachments, device, attachment);
}

/* A backend let a device go (unplugged, its port gone, or refused): its attachment goes; a job stays, waiting for it.
 */
static void
on_device_removed(HealerBackend *backend, HealerDevice *device, const char *why, gpointer user_data)
{
	HealerEngine *self = user_data;
	Attachment *attachment = g_hash_table_lookup(self->attachments, device);

	(void)backend;
	if (attachment == NULL)
		return;
	if (why != NULL)
		log_detached(attachment, why);
	forget_attachment(self, device);
	update_notify_status(self);
}

void
healer_engine_add_backend(HealerEngine *self, HealerBackend *backend)
{
	/* One physical device may show in several backends (backend.h, "Peers"). */
	for (guint i = 0; i < self->backends->len; i++)
		healer_backend_add_peer(g_ptr_array_index(self->backends, i), backend);
	g_ptr_array_add(self->backends, g_object_ref(backend));
	g_signal_connect(backend, "device-added", G_CALLBACK(on_device_added), self);
	g_signal_connect(backend, "device-removed", G_CALLBACK(on_device_removed), self);
	if (self->started)
		healer_backend_start(backend);
}

/* ---- the engine ---------------------------------------------------------- */

/* What the engine hears from every device; each handler finds the device's attachment (or ignores it). */
static const HealerDeviceWatchFuncs engine_watch = {
        .identity_changed = on_identity_changed,
        .identified = on_identified,
        .log = on_device_log,
        .changed = on_device_changed,
        .progress = on_device_progress,
};

HealerEngine *
healer_engine_new(HealerConfig *config, HealerSupply *supply)
{
	HealerEngine *self = g_new0(HealerEngine, 1);
	g_autoptr(GPtrArray) saved = NULL;

	self->config = config;
	self->supply = supply;
	self->backends = g_ptr_array_new_with_free_func(g_object_unref);
	self->attachments = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, (GDestroyNotify)attachment_free);
	self->by_id = g_hash_table_new(g_str_hash, g_str_equal);
	self->jobs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)job_free);
	self->returning = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_queue_init(&self->waiting);
	self->job_writer = healer_job_writer_new(config->state_dir, on_job_written, self);
	/*
	 * Before any backend's watch (a backend makes its own with the first device it serves): watches run
	 * in the order they were made, and a backend counts a new id on a port after the engine detached
	 * the one before.
	 */
	self->watch = healer_device_watch_new(&engine_watch, self);
	/* Heals interrupted by a stop or a crash: resumed when their device shows up. */
	saved = healer_job_file_list(config->state_dir);
	for (guint i = 0; saved != NULL && i < saved->len; i++) {
		Job *job = job_for(self, g_ptr_array_index(saved, i));
		job->resumed = TRUE;
		g_info("a heal of %s was in progress: it resumes when the device is seen", job->device_id);
	}
	return self;
}

void
healer_engine_start(HealerEngine *self)
{
	self->started = TRUE;
	for (guint i = 0; i < self->backends->len; i++)
		healer_backend_start(g_ptr_array_index(self->backends, i));
	update_notify_status(self);
}

static Attachment *
attachment_for_device(HealerEngine *self, const char *device_id)
{
	Attachment *attachment = device_id != NULL ? g_hash_table_lookup(self->by_id, device_id) : NULL;

	return attachment != NULL && attachment->announced ? attachment : NULL;
}

gboolean
healer_engine_flash_app(HealerEngine *self, const char *device_id, const char *app_path, HealerEngineDoneFunc func,
                        gpointer user_data, GError **error)
{
	g_autoptr(GBytes) bytes = NULL;
	int fd = healer_caller_open_path(app_path, FALSE, NULL, error);

	if (fd < 0)
		return FALSE;
	bytes = healer_fd_read_all(fd, app_path, HEALER_STORE_MAX_MODULE_SIZE, error);
	close(fd);
	if (bytes == NULL)
		return FALSE;
	return healer_engine_flash_app_bytes(self, device_id, bytes, app_path, func, user_data, error);
}

gboolean
healer_engine_flash_app_bytes(HealerEngine *self, const char *device_id, GBytes *app_bytes, const char *app_path,
                              HealerEngineDoneFunc func, gpointer user_data, GError **error)
{
	Attachment *attachment = attachment_for_device(self, device_id);
	g_autoptr(HealerInventoryEntry) app = NULL;
	const HealerDeviceState *state;
	g_autofree char *sha = NULL;
	Job *job;

	if (attachment == NULL || healer_device_get_state(attachment->device) == NULL) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND, "no device %s is attached", device_id);
		return FALSE;
	}
	if (g_hash_table_contains(self->jobs, device_id) || healer_device_is_busy(attachment->device)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_BUSY, "device %s is busy with a job", device_id);
		return FALSE;
	}
	app = healer_inventory_entry_new_from_data(app_path, g_bytes_get_data(app_bytes, NULL),
	                                           g_bytes_get_size(app_bytes), NULL, error);
	if (app == NULL)
		return FALSE;
	state = healer_device_get_state(attachment->device);
	if (app->function != MODULE_FUNCTION_USER_PART || app->platform_id != state->platform_id) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_INVALID_ARGUMENT,
		            "%s is not an application for platform %u (it is a %s for platform %u)", app_path,
		            state->platform_id, healer_module_function_to_string(app->function), app->platform_id);
		return FALSE;
	}
	/* The application is flashed from the store like every module: verified, by its hash. */
	if (!healer_supply_import_app(self->supply, app_path, app_bytes, &sha, error))
		return FALSE;
	job = job_for(self, device_id);
	job->app = g_steal_pointer(&app);
	job->done_func = func;
	job->done_user_data = user_data;
	start_job(attachment, job);
	return TRUE;
}

void
healer_engine_store_changed(HealerEngine *self)
{
	GHashTableIter iter;
	gpointer value;

	healer_supply_drop_planning_set(self->supply);
	g_hash_table_iter_init(&iter, self->attachments);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		Attachment *attachment = value;
		if (attachment->status == HEALER_STATUS_BLOCKED || attachment->fetching)
			evaluate(attachment);
	}
	healer_emit_event(.kind = HEALER_EVENT_SOURCES_CHANGED);
}

char *
healer_engine_summary(HealerEngine *self)
{
	guint counts[HEALER_STATUS_DETACHED + 1] = {0};
	g_autoptr(GString) out = g_string_new(NULL);
	GHashTableIter iter;
	gpointer value;
	guint total = 0;

	if (self->attachments == NULL)
		return g_strdup("stopping");
	g_hash_table_iter_init(&iter, self->attachments);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		counts[((Attachment *)value)->status]++;
		total++;
	}
	g_string_append_printf(out, "%u device%s", total, total == 1 ? "" : "s");
	for (guint s = 0; s <= HEALER_STATUS_DETACHED; s++) {
		if (counts[s] > 0)
			g_string_append_printf(out, "%s %u %s", out->len && strchr(out->str, ':') ? "," : ":",
			                       counts[s], healer_status_to_string(s));
	}
	return g_string_free(g_steal_pointer(&out), FALSE);
}

void
healer_engine_free(HealerEngine *self)
{
	if (self == NULL)
		return;
	g_clear_pointer(&self->watch, healer_device_watch_free);
	/* No device comes or goes any more: the backends close theirs. */
	for (guint i = 0; i < self->backends->len; i++) {
		HealerBackend *backend = g_ptr_array_index(self->backends, i);
		g_signal_handlers_disconnect_by_data(backend, self);
		healer_backend_stop(backend);
	}
	g_hash_table_destroy(self->attachments);
	self->attachments = NULL;
	g_hash_table_destroy(self->by_id);
	g_ptr_array_unref(self->backends);
	g_hash_table_destroy(self->jobs);
	/* After the jobs: a job leaves it as it goes. */
	g_clear_pointer(&self->returning, g_hash_table_destroy);
	g_queue_clear(&self->waiting);
	/* Last: tearing attachments and jobs down may queue writes; a stop (SIGTERM) waits for them all. */
	healer_job_writer_free(self->job_writer);
	if (self->trim_source != 0)
		g_source_remove(self->trim_source);
	g_free(self);
}

/* ---- what the faces see and ask for -------------------------------------- */

void
healer_device_info_free(HealerDeviceInfo *info)
{
	if (info == NULL)
		return;
	g_free(info->id);
	g_free(info->port);
	g_free(info->transport);
	g_free(info->platform_name);
	g_free(info->mode);
	g_free(info->led);
	g_free(info->state);
	g_free(info->detail);
	g_free(info->safe_mode_reason);
	g_free(info->modules_json);
	g_strfreev(info->ttys);
	g_free(info->current_step);
	g_free(info->last_error);
	g_free(info);
}

static HealerDeviceInfo *
info_for(Attachment *attachment)
{
	HealerDevice *device = attachment->device;
	const HealerPlatform *platform;
	HealerDeviceHealth health;
	HealerDeviceInfo *info;

	if (!attachment->announced)
		return NULL;
	healer_device_get_health(device, &health);
	platform = healer_platform_lookup(healer_device_get_platform_id(device));
	info = g_new0(HealerDeviceInfo, 1);
	info->id = g_strdup(attachment->id);
	info->port = g_strdup(attachment->port);
	info->transport = g_strdup(healer_device_get_transport_name(device));
	info->platform_id = healer_device_get_platform_id(device);
	info->platform_name = g_strdup(platform ? platform->name : "");
	info->mode = g_strdup(health.mode);
	info->led = g_strdup(health.led);
	info->state = g_strdup(healer_status_to_string(attachment->status));
	info->detail = g_strdup(attachment->detail ? attachment->detail : "");
	info->safe_mode_reason = g_strdup(health.safe_mode_reason);
	info->modules_json = g_strdup(healer_device_get_state_json(device) ? healer_device_get_state_json(device) : "");
	/* One physical device, several ports: its backend names the others (a Particle device's tty). */
	info->ttys = healer_backend_get_ttys(attachment->backend, device);
	/* A finished heal stays at 100 until the next one; a device never healed here shows 0. */
	info->progress =
	        attachment->job ? job_progress(attachment->job)
	                        : (attachment->status == HEALER_STATUS_HEALTHY && attachment->last_heal != 0 ? 100 : 0);
	info->current_step =
	        g_strdup(attachment->status == HEALER_STATUS_HEALING && attachment->detail ? attachment->detail : "");
	info->last_error = g_strdup(attachment->last_error ? attachment->last_error : "");
	info->last_heal = attachment->last_heal;
	return info;
}

HealerDeviceInfo *
healer_engine_get_device(HealerEngine *self, const char *device_id)
{
	Attachment *attachment = attachment_for_device(self, device_id);

	return attachment ? info_for(attachment) : NULL;
}

static gint
by_port(gconstpointer a, gconstpointer b)
{
	return g_strcmp0((*(HealerDeviceInfo *const *)a)->port, (*(HealerDeviceInfo *const *)b)->port);
}

GPtrArray *
healer_engine_list_devices(HealerEngine *self)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)healer_device_info_free);
	GHashTableIter iter;
	gpointer value;

	g_hash_table_iter_init(&iter, self->attachments);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		HealerDeviceInfo *info = info_for(value);
		if (info != NULL)
			g_ptr_array_add(out, info);
	}
	g_ptr_array_sort(out, by_port);
	return out;
}

guint
healer_engine_count_healing(HealerEngine *self)
{
	return self->active_jobs;
}

typedef struct {
	HealerEngine *engine;
	char *device_id;
} NothingToHeal;

/* Reported from an idle, after the caller has its answer, as a real heal's end would be. */
static gboolean
announce_nothing_to_heal(gpointer user_data)
{
	NothingToHeal *n = user_data;

	healer_emit_event(.kind = HEALER_EVENT_HEAL_FINISHED, .device_id = n->device_id, .success = TRUE,
	                  .reason = "nothing to heal: the application's dependencies are met");
	g_free(n->device_id);
	g_free(n);
	return G_SOURCE_REMOVE;
}

gboolean
healer_engine_heal(HealerEngine *self, const char *device_id, GError **error)
{
	Attachment *attachment = attachment_for_device(self, device_id);
	Job *job;

	if (attachment == NULL || !healer_device_has_state(attachment->device)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND, "no device %s is attached", device_id);
		return FALSE;
	}
	job = g_hash_table_lookup(self->jobs, device_id);
	if ((job != NULL && job->active) || healer_device_is_busy(attachment->device)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_BUSY, "device %s is already being healed", device_id);
		return FALSE;
	}
	if (!needs_heal(attachment->device)) {
		/* Nothing to do is an answer too: the caller waiting for HealFinished gets it. */
		NothingToHeal *n = g_new0(NothingToHeal, 1);
		n->engine = self;
		n->device_id = g_strdup(device_id);
		g_idle_add(announce_nothing_to_heal, n);
		return TRUE;
	}
	if (job != NULL && job->retry_source != 0) {
		g_source_remove(job->retry_source);
		job->retry_source = 0;
	}
	start_job(attachment, job ? job : job_for(self, device_id));
	return TRUE;
}

GPtrArray *
healer_engine_heal_all(HealerEngine *self)
{
	GPtrArray *started = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GList) attachments = g_hash_table_get_values(self->attachments);

	for (GList *l = attachments; l != NULL; l = l->next) {
		Attachment *attachment = l->data;
		const char *id = attachment->id;
		if (id == NULL || !healer_device_has_state(attachment->device) || !needs_heal(attachment->device))
			continue;
		if (attachment->job != NULL && attachment->job->active) {
			g_ptr_array_add(started, g_strdup(id));
			continue;
		}
		if (healer_engine_heal(self, id, NULL))
			g_ptr_array_add(started, g_strdup(id));
	}
	return started;
}

char *
healer_engine_plan(HealerEngine *self, const char *device_id, GError **error)
{
	Attachment *attachment = attachment_for_device(self, device_id);
	const HealerDeviceState *state;
	g_autoptr(HealerPlan) plan = NULL;
	HealerGoal goal = {.kind = HEALER_GOAL_HEAL};
	HealerResolverPolicy policy = {.allow_prerelease = self->config->allow_prerelease};
	json_object *root;
	char *out;

	state = attachment != NULL ? healer_device_get_state(attachment->device) : NULL;
	if (state == NULL) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND, "no device %s is attached", device_id);
		return NULL;
	}
	plan = healer_resolve(state, healer_supply_get_planning_set(self->supply)->inventory, &goal, &policy, error);
	if (plan == NULL)
		return NULL;
	root = healer_plan_to_json(plan);
	out = g_strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	return out;
}

gboolean
healer_engine_reset(HealerEngine *self, const char *device_id, GError **error)
{
	Attachment *attachment = attachment_for_device(self, device_id);

	if (attachment == NULL) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_NOT_FOUND, "no device %s is attached", device_id);
		return FALSE;
	}
	if (healer_device_is_busy(attachment->device)) {
		g_set_error(error, HEALER_ERROR, HEALER_ERROR_BUSY, "device %s is receiving a module", device_id);
		return FALSE;
	}
	healer_device_reset(attachment->device);
	return TRUE;
}
