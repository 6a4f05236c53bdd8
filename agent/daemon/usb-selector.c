#include "usb-selector.h"

#include <string.h>

#include "healer-error.h"

gboolean
healer_usb_selector_is_usb(const char *text)
{
	return g_str_has_prefix(text, "usb:");
}

#define SELECTOR_FORMS "usb:BUS-PORT[.PORT...] (a physical id, e.g. usb:1-1.4) or usb:VID:PID (e.g. usb:2b04:d006)"

/* Exactly four hexadecimal digits. */
static gboolean
parse_hex16(const char *text, gsize len, guint16 *out)
{
	guint v = 0;

	if (len != 4)
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isxdigit(text[i]))
			return FALSE;
		v = v * 16 + (guint)g_ascii_xdigit_value(text[i]);
	}
	*out = (guint16)v;
	return TRUE;
}

/* A decimal number 1..255 without a sign or leading zero; *end past it. */
static gboolean
parse_number(const char *text, const char **end, guint8 *out)
{
	guint v = 0;
	const char *p = text;

	if (!g_ascii_isdigit(*p) || *p == '0')
		return FALSE;
	while (g_ascii_isdigit(*p) && v <= 255)
		v = v * 10 + (guint)(*p++ - '0');
	if (v > 255 || g_ascii_isdigit(*p))
		return FALSE;
	*out = (guint8)v;
	*end = p;
	return TRUE;
}

gboolean
healer_usb_selector_parse(const char *text, HealerUsbSelector *selector, GError **error)
{
	const char *rest;
	const char *colon;
	const char *p;

	memset(selector, 0, sizeof *selector);
	if (!healer_usb_selector_is_usb(text))
		return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT, "'%s' does not start with 'usb:' (%s)", text,
		                   SELECTOR_FORMS);
	rest = text + 4;
	colon = strchr(rest, ':');
	if (colon != NULL) {
		selector->kind = HEALER_USB_SELECTOR_IDS;
		if (!parse_hex16(rest, (gsize)(colon - rest), &selector->vendor_id))
			return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
			                   "'%s': the vendor id is not 4 hexadecimal digits (%s)", text,
			                   SELECTOR_FORMS);
		if (!parse_hex16(colon + 1, strlen(colon + 1), &selector->product_id))
			return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
			                   "'%s': the product id is not 4 hexadecimal digits (%s)", text,
			                   SELECTOR_FORMS);
		return TRUE;
	}
	selector->kind = HEALER_USB_SELECTOR_PORT;
	if (!parse_number(rest, &p, &selector->bus) || *p != '-')
		return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
		                   "'%s': expected a bus number 1..255 and '-' after 'usb:' (%s)", text,
		                   SELECTOR_FORMS);
	do {
		p++;
		if (selector->n_ports == HEALER_USB_MAX_PORTS)
			return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
			                   "'%s': more than %u ports (USB has at most %u tiers of hubs)", text,
			                   HEALER_USB_MAX_PORTS, HEALER_USB_MAX_PORTS);
		if (!parse_number(p, &p, &selector->ports[selector->n_ports]))
			return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT,
			                   "'%s': expected a port number 1..255 after '%c' (%s)", text, p[-1],
			                   SELECTOR_FORMS);
		selector->n_ports++;
	} while (*p == '.');
	if (*p != '\0')
		return healer_fail(error, HEALER_ERROR_INVALID_ARGUMENT, "'%s': unexpected '%c' after the ports (%s)",
		                   text, *p, SELECTOR_FORMS);
	return TRUE;
}
