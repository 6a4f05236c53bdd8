/*
 * --trace FILE: one line per control transfer a device answered, and one per event (plugged,
 * unplugged, a fault armed or fired, a control command), each starting with the seconds since
 * usbemu started.  Written and flushed line by line, so a test can read it while COMMAND runs.
 * The format is in docs/testing.md ("usbemu").
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "usbemu.h"

static GMutex trace_lock;
static FILE *trace_file;

int64_t
usbemu_now_us(void)
{
	return g_get_monotonic_time();
}

bool
usbemu_trace_open(const char *path, GError **error)
{
	trace_file = fopen(path, "we");
	if (trace_file == NULL) {
		int saved = errno;
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "--trace %s: %s", path, g_strerror(saved));
		return false;
	}
	return true;
}

void
usbemu_trace_close(void)
{
	g_mutex_lock(&trace_lock);
	if (trace_file != NULL)
		fclose(trace_file);
	trace_file = NULL;
	g_mutex_unlock(&trace_lock);
}

bool
usbemu_trace_enabled(void)
{
	return trace_file != NULL;
}

void
usbemu_trace(const char *format, ...)
{
	int64_t elapsed = usbemu_now_us() - usbemu.start_us;
	va_list args;

	g_mutex_lock(&trace_lock);
	if (trace_file != NULL) {
		fprintf(trace_file, "%" G_GINT64_FORMAT ".%06" G_GINT64_FORMAT " ", elapsed / G_USEC_PER_SEC,
		        elapsed % G_USEC_PER_SEC);
		va_start(args, format);
		vfprintf(trace_file, format, args);
		va_end(args);
		fputc('\n', trace_file);
		fflush(trace_file);
	}
	g_mutex_unlock(&trace_lock);
}

const char *
usbemu_dfu_state_name(uint8_t state)
{
	static const char *const names[] = {
	        "appIDLE",        "appDETACH",        "dfuIDLE",     "dfuDNLOAD-SYNC",         "dfuDNBUSY",
	        "dfuDNLOAD-IDLE", "dfuMANIFEST-SYNC", "dfuMANIFEST", "dfuMANIFEST-WAIT-RESET", "dfuUPLOAD-IDLE",
	        "dfuERROR",
	};
	return state < G_N_ELEMENTS(names) ? names[state] : "?";
}

const char *
usbemu_dfu_status_name(uint8_t status)
{
	static const char *const names[] = {
	        "OK",      "errTARGET", "errFILE",    "errWRITE",      "errERASE",    "errCHECK_ERASED",
	        "errPROG", "errVERIFY", "errADDRESS", "errNOTDONE",    "errFIRMWARE", "errVENDOR",
	        "errUSBR", "errPOR",    "errUNKNOWN", "errSTALLEDPKT",
	};
	return status < G_N_ELEMENTS(names) ? names[status] : "?";
}

const char *
usbemu_request_name(uint8_t request_type, uint8_t request, char buffer[8])
{
	static const char *const standard[] = {
	        "GET_STATUS",
	        "CLEAR_FEATURE",
	        NULL,
	        "SET_FEATURE",
	        NULL,
	        "SET_ADDRESS",
	        "GET_DESCRIPTOR",
	        "SET_DESCRIPTOR",
	        "GET_CONFIGURATION",
	        "SET_CONFIGURATION",
	        "GET_INTERFACE",
	        "SET_INTERFACE",
	        "SYNCH_FRAME",
	};
	static const char *const dfu[] = {"DETACH", "DNLOAD", "UPLOAD", "GETSTATUS", "CLRSTATUS", "GETSTATE", "ABORT"};
	unsigned type = (request_type >> 5) & 3;

	if (type == 0 && request < G_N_ELEMENTS(standard) && standard[request] != NULL)
		return standard[request];
	/* Class requests to an interface: DFU's, the only class usbemu speaks. */
	if (type == 1 && (request_type & 0x1f) == 1 && request < G_N_ELEMENTS(dfu))
		return dfu[request];
	g_snprintf(buffer, 8, "0x%02x", request);
	return buffer;
}
