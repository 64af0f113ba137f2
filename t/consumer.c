/* t/consumer.c: the enricher's pure parts: offset blocks (which S3 object a
 * record belongs to) and the pause hysteresis. */
#include <stdint.h>

#include "consumer.h"
#include "tap.h"

int
main(void)
{
	/* Blocks are aligned on N, so a replay from any offset rebuilds the
	 * same objects. */
	is_int(consumer_block_first(0, 500), 0, "offset 0 starts block 0");
	is_int(consumer_block_last(0, 500), 499, "block 0 ends at 499");
	is_int(consumer_block_first(499, 500), 0, "offset 499 is in block 0");
	is_int(consumer_block_first(500, 500), 500, "offset 500 starts block 1");
	is_int(consumer_block_last(777, 500), 999, "offset 777 is in block [500, 999]");
	is_int(consumer_block_first(123456789012LL, 1000), 123456789000LL, "large offsets");
	is_int(consumer_block_first(7, 1), 7, "N = 1: one offset a block");
	is_int(consumer_block_last(7, 1), 7, "N = 1: block ends where it starts");
	for (int64_t o = 0; o < 2000; o += 37) {
		int64_t f = consumer_block_first(o, 40), l = consumer_block_last(o, 40);

		if (!(f <= o && o <= l && l - f == 39 && f % 40 == 0)) {
			ok(0, "block arithmetic holds for offset %lld", (long long)o);
			return tap_done();
		}
	}
	ok(1, "every offset lies in its own aligned block of N");

	ok(!consumer_should_pause(false, 100, 100), "at the limit: keep going");
	ok(consumer_should_pause(false, 101, 100), "over the limit: pause");
	ok(consumer_should_pause(true, 60, 100), "paused, above half: stay paused");
	ok(consumer_should_pause(true, 50, 100), "paused, at half: stay paused");
	ok(!consumer_should_pause(true, 49, 100), "paused, below half: resume");
	ok(!consumer_should_pause(false, 0, 1), "empty never pauses");
	return tap_done();
}
