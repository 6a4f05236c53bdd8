/* Retry backoff: bounds, growth, the cap, the jitter ranges, no overflow. */
#include "backoff.h"

static const guint32 randoms[] = {0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 12345, 0xdeadbeef};

static void
test_ceiling_growth_and_cap(void)
{
	g_assert_cmpuint(healer_backoff_ceiling_ms(0, 1000, 60000), ==, 1000);
	g_assert_cmpuint(healer_backoff_ceiling_ms(1, 1000, 60000), ==, 2000);
	g_assert_cmpuint(healer_backoff_ceiling_ms(2, 1000, 60000), ==, 4000);
	g_assert_cmpuint(healer_backoff_ceiling_ms(5, 1000, 60000), ==, 32000);
	g_assert_cmpuint(healer_backoff_ceiling_ms(6, 1000, 60000), ==, 60000);
	g_assert_cmpuint(healer_backoff_ceiling_ms(7, 1000, 60000), ==, 60000);
	/* never decreasing */
	for (guint a = 0; a < 200; a++)
		g_assert_cmpuint(healer_backoff_ceiling_ms(a, 250, 3600000), <=,
		                 healer_backoff_ceiling_ms(a + 1, 250, 3600000));
	/* max below min: min wins; min 0 grows from 1 */
	g_assert_cmpuint(healer_backoff_ceiling_ms(3, 5000, 10), ==, 5000);
	g_assert_cmpuint(healer_backoff_ceiling_ms(0, 0, 100), ==, 1);
	g_assert_cmpuint(healer_backoff_ceiling_ms(4, 0, 100), ==, 16);
	g_assert_cmpuint(healer_backoff_ceiling_ms(10, 0, 100), ==, 100);
}

static void
test_no_overflow(void)
{
	const guint attempts[] = {31, 32, 33, 62, 63, 64, 65, 1000, G_MAXUINT - 1, G_MAXUINT};

	for (gsize i = 0; i < G_N_ELEMENTS(attempts); i++) {
		g_assert_cmpuint(healer_backoff_ceiling_ms(attempts[i], 1000, 60000), ==, 60000);
		g_assert_cmpuint(healer_backoff_ceiling_ms(attempts[i], 3, G_MAXUINT64), ==,
		                 attempts[i] >= 63 ? G_MAXUINT64 : MAX((guint64)3 << attempts[i], 3));
		for (gsize r = 0; r < G_N_ELEMENTS(randoms); r++) {
			guint64 d = healer_backoff_delay_ms(attempts[i], 1000, 60000, randoms[r]);
			guint64 full = healer_backoff_delay_full_jitter_ms(attempts[i], 1000, 60000, randoms[r]);
			guint64 huge = healer_backoff_delay_ms(attempts[i], 1, G_MAXUINT64, randoms[r]);
			g_assert_cmpuint(d, >=, 30000);
			g_assert_cmpuint(d, <, 60000);
			g_assert_cmpuint(full, >=, 1000);
			g_assert_cmpuint(full, <, 60000);
			g_assert_cmpuint(huge, >=, healer_backoff_ceiling_ms(attempts[i], 1, G_MAXUINT64) / 2);
			if (attempts[i] >= 64)
				g_assert_cmpuint(huge, >=, G_MAXUINT64 / 2);
		}
	}
	/* the whole 64-bit range: still below the ceiling, the top reached by the largest random */
	g_assert_cmpuint(healer_backoff_delay_full_jitter_ms(100, 0, G_MAXUINT64, 0xffffffff), <, G_MAXUINT64);
	g_assert_cmpuint(healer_backoff_delay_full_jitter_ms(100, 0, G_MAXUINT64, 0xffffffff), >,
	                 G_MAXUINT64 - (G_MAXUINT64 >> 31));
	g_assert_cmpuint(healer_backoff_delay_full_jitter_ms(100, 0, G_MAXUINT64, 0), ==, 0);
}

static void
test_equal_jitter_range(void)
{
	for (guint a = 0; a < 70; a++) {
		guint64 ceiling = healer_backoff_ceiling_ms(a, 500, 120000);
		for (gsize r = 0; r < G_N_ELEMENTS(randoms); r++) {
			guint64 d = healer_backoff_delay_ms(a, 500, 120000, randoms[r]);
			g_assert_cmpuint(d, >=, MAX(500, ceiling / 2));
			g_assert_cmpuint(d, <=, ceiling);
			if (ceiling / 2 >= 500 && ceiling > 500)
				g_assert_cmpuint(d, <, ceiling);
		}
		/* the smallest random gives the bottom of the range */
		g_assert_cmpuint(healer_backoff_delay_ms(a, 500, 120000, 0), ==, MAX(500, ceiling / 2));
	}
	/* attempt 0: the range meets at min_ms */
	g_assert_cmpuint(healer_backoff_delay_ms(0, 1000, 60000, 0xffffffff), ==, 1000);
	/* exact values: ceiling 8000, range [4000, 8000) */
	g_assert_cmpuint(healer_backoff_delay_ms(3, 1000, 60000, 0), ==, 4000);
	g_assert_cmpuint(healer_backoff_delay_ms(3, 1000, 60000, 0x80000000), ==, 6000);
	g_assert_cmpuint(healer_backoff_delay_ms(3, 1000, 60000, 0xffffffff), ==, 7999);
}

static void
test_full_jitter_range(void)
{
	for (guint a = 0; a < 70; a++) {
		guint64 ceiling = healer_backoff_ceiling_ms(a, 200, 30000);
		for (gsize r = 0; r < G_N_ELEMENTS(randoms); r++) {
			guint64 d = healer_backoff_delay_full_jitter_ms(a, 200, 30000, randoms[r]);
			g_assert_cmpuint(d, >=, 200);
			g_assert_cmpuint(d, <=, ceiling);
			if (ceiling > 200)
				g_assert_cmpuint(d, <, ceiling);
		}
		g_assert_cmpuint(healer_backoff_delay_full_jitter_ms(a, 200, 30000, 0), ==, 200);
	}
	/* ceiling 1600 from 200: [200, 1600) */
	g_assert_cmpuint(healer_backoff_delay_full_jitter_ms(3, 200, 30000, 0x80000000), ==, 900);
	g_assert_cmpuint(healer_backoff_delay_full_jitter_ms(3, 200, 30000, 0xffffffff), ==, 1599);
}

/* Spread: with many randoms, the delays cover the range rather than clump. */
static void
test_jitter_spread(void)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(42);
	guint buckets[10] = {0};

	for (guint i = 0; i < 10000; i++) {
		guint64 d = healer_backoff_delay_full_jitter_ms(20, 0, 10000, g_rand_int(rand));
		g_assert_cmpuint(d, <, 10000);
		buckets[d / 1000]++;
	}
	for (guint b = 0; b < 10; b++)
		g_assert_cmpuint(buckets[b], >, 800);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/backoff/ceiling", test_ceiling_growth_and_cap);
	g_test_add_func("/backoff/no-overflow", test_no_overflow);
	g_test_add_func("/backoff/equal-jitter", test_equal_jitter_range);
	g_test_add_func("/backoff/full-jitter", test_full_jitter_range);
	g_test_add_func("/backoff/spread", test_jitter_spread);
	return g_test_run();
}
