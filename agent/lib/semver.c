#include "semver.h"

#include <string.h>

/* A numeric identifier: digits, no leading zero unless it is "0". */
static gboolean
numeric_identifier(const char *s, gsize len)
{
	if (len == 0 || (len > 1 && s[0] == '0'))
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isdigit(s[i]))
			return FALSE;
	}
	return TRUE;
}

static gboolean
identifiers_valid(const char *s, gsize len, gboolean prerelease)
{
	gsize start = 0;

	if (len == 0)
		return FALSE;
	for (gsize i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			gsize n = i - start;
			gboolean all_digits = TRUE;
			if (n == 0)
				return FALSE;
			for (gsize j = start; j < i; j++) {
				if (!g_ascii_isalnum(s[j]) && s[j] != '-')
					return FALSE;
				if (!g_ascii_isdigit(s[j]))
					all_digits = FALSE;
			}
			if (prerelease && all_digits && !numeric_identifier(s + start, n))
				return FALSE;
			start = i + 1;
		}
	}
	return TRUE;
}

gboolean
healer_semver_valid(const char *version)
{
	const char *p = version;
	const char *pre, *build;

	if (version == NULL)
		return FALSE;
	for (int part = 0; part < 3; part++) {
		gsize n = strspn(p, "0123456789");
		if (!numeric_identifier(p, n) || n > 9)
			return FALSE;
		p += n;
		if (part < 2) {
			if (*p != '.')
				return FALSE;
			p++;
		}
	}
	pre = *p == '-' ? p + 1 : NULL;
	build = strchr(p, '+');
	if (pre == NULL && build == NULL)
		return *p == '\0';
	if (pre == NULL && build != p)
		return FALSE;
	if (pre != NULL && !identifiers_valid(pre, build ? (gsize)(build - pre) : strlen(pre), TRUE))
		return FALSE;
	return build == NULL || identifiers_valid(build + 1, strlen(build + 1), FALSE);
}

gboolean
healer_semver_is_prerelease(const char *version)
{
	const char *plus = strchr(version, '+');
	const char *dash = strchr(version, '-');

	return dash != NULL && (plus == NULL || dash < plus);
}

static guint64
parse_number(const char **p)
{
	guint64 v = 0;

	while (g_ascii_isdigit(**p))
		v = v * 10 + (guint64)(*(*p)++ - '0');
	return v;
}

static int
compare_identifier(const char *a, gsize alen, const char *b, gsize blen)
{
	gboolean anum = numeric_identifier(a, alen) || (alen == 1 && a[0] == '0');
	gboolean bnum = numeric_identifier(b, blen) || (blen == 1 && b[0] == '0');

	if (anum && bnum) {
		if (alen != blen)
			return alen < blen ? -1 : 1;
		return memcmp(a, b, alen);
	}
	if (anum != bnum)
		return anum ? -1 : 1; /* numeric identifiers sort first */
	{
		int c = memcmp(a, b, MIN(alen, blen));
		if (c != 0)
			return c;
		return alen == blen ? 0 : (alen < blen ? -1 : 1);
	}
}

int
healer_semver_compare(const char *a, const char *b)
{
	const char *pa = a, *pb = b;
	gsize alen, blen;

	for (int part = 0; part < 3; part++) {
		guint64 va = parse_number(&pa), vb = parse_number(&pb);
		if (va != vb)
			return va < vb ? -1 : 1;
		if (*pa == '.')
			pa++;
		if (*pb == '.')
			pb++;
	}
	/* A release outranks its prereleases; build metadata does not count. */
	alen = *pa == '-' ? strcspn(pa + 1, "+") : 0;
	blen = *pb == '-' ? strcspn(pb + 1, "+") : 0;
	if (alen == 0 || blen == 0)
		return alen == blen ? 0 : (alen == 0 ? 1 : -1);
	pa++;
	pb++;
	while (alen > 0 && blen > 0) {
		gsize ia = strcspn(pa, ".+"), ib = strcspn(pb, ".+");
		int c;
		ia = MIN(ia, alen);
		ib = MIN(ib, blen);
		c = compare_identifier(pa, ia, pb, ib);
		if (c != 0)
			return c;
		pa += ia;
		pb += ib;
		alen -= ia;
		blen -= ib;
		if (alen > 0) {
			pa++;
			alen--;
		}
		if (blen > 0) {
			pb++;
			blen--;
		}
	}
	return alen == blen ? 0 : (alen == 0 ? -1 : 1);
}
