// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dirty/ without a mount: page sets, the FULL backend, and the FUSE
 * request handler driven with hand-built requests (what the kernel sends),
 * including the ones it never should send.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "dirty/dirty.h"
#include "dirty/fuse_ram.h"

static void test_set_iterates_pages_and_ranges(void **state)
{
	struct remus_dirty_set s;
	uint64_t want[] = { 0, 1, 2, 63, 64, 200, 298, 299 };
	uint64_t p, first, count;
	size_t i = 0;

	assert_int_equal(remus_dirty_set_init(&s, 300), 0);
	assert_int_equal(remus_dirty_set_next(&s, 0), 300);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		s.bits[want[i] / 64] |= UINT64_C(1) << (want[i] % 64);
	i = 0;
	for (p = remus_dirty_set_next(&s, 0); p < s.npages;
	     p = remus_dirty_set_next(&s, p + 1))
		assert_int_equal(p, want[i++]);
	assert_int_equal(i, sizeof(want) / sizeof(want[0]));
	assert_true(remus_dirty_set_next_range(&s, 0, &first, &count));
	assert_int_equal(first, 0);
	assert_int_equal(count, 3);
	assert_true(remus_dirty_set_next_range(&s, 3, &first, &count));
	assert_int_equal(first, 63);
	assert_int_equal(count, 2);
	assert_true(remus_dirty_set_next_range(&s, 65, &first, &count));
	assert_int_equal(first, 200);
	assert_true(remus_dirty_set_next_range(&s, 201, &first, &count));
	assert_int_equal(first, 298);
	assert_int_equal(count, 2);
	assert_false(remus_dirty_set_next_range(&s, 300, &first, &count));
	assert_false(remus_dirty_set_test(&s, 300));
	remus_dirty_set_release(&s);
	remus_dirty_set_release(&s);
	assert_int_equal(remus_dirty_set_init(&s, 0), -EINVAL);
}

static void set_pages(struct remus_dirty_set *s, const uint64_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		s->bits[p[i] / 64] |= UINT64_C(1) << (p[i] % 64);
		s->ndirty++;
	}
}

static void test_set_merge_clear_common(void **state)
{
	struct remus_dirty_set a, b, other;
	uint64_t pa[] = { 0, 63, 64, 199 }, pb[] = { 1, 63, 199 };

	assert_int_equal(remus_dirty_set_init(&a, 200), 0);
	assert_int_equal(remus_dirty_set_init(&b, 200), 0);
	assert_int_equal(remus_dirty_set_init(&other, 201), 0);
	set_pages(&a, pa, 4);
	set_pages(&b, pb, 3);
	assert_int_equal(remus_dirty_set_common(&a, &b), 2);
	assert_int_equal(remus_dirty_set_common(&a, &other), 0);
	assert_int_equal(remus_dirty_set_merge(&a, &other), -EINVAL);
	assert_int_equal(a.ndirty, 4);
	assert_int_equal(remus_dirty_set_merge(&a, &b), 0);
	assert_int_equal(a.ndirty, 5); /* 0 1 63 64 199 */
	assert_true(remus_dirty_set_test(&a, 1));
	assert_int_equal(b.ndirty, 3);
	remus_dirty_set_clear(&a);
	assert_int_equal(a.ndirty, 0);
	assert_int_equal(a.npages, 200);
	assert_int_equal(remus_dirty_set_next(&a, 0), 200);
	remus_dirty_set_release(&a);
	remus_dirty_set_release(&b);
	remus_dirty_set_release(&other);
}

static void test_full_reports_every_page_and_nothing_beyond(void **state)
{
	struct remus_dirty_opts o = { .kind = REMUS_DIRTY_FULL,
				      .size = 100 * 4096,
				      .ram_fd = -1 };
	struct remus_dirty *d;
	struct remus_dirty_set s, wrong;
	struct remus_dirty_stats st;
	int fd = memfd_create("ram", MFD_CLOEXEC);

	assert_int_equal(remus_dirty_open(&o, &d), 0);
	assert_null(remus_dirty_ram(d));
	assert_null(remus_dirty_ram_path(d));
	assert_string_equal(remus_dirty_kind_name(remus_dirty_kind(d)), "full");
	assert_int_equal(remus_dirty_set_init(&s, remus_dirty_npages(d)), 0);
	assert_int_equal(remus_dirty_start(d), 0);
	assert_int_equal(remus_dirty_collect(d, &s), 0);
	assert_int_equal(s.ndirty, 100);
	assert_int_equal(s.bits[1], (UINT64_C(1) << 36) - 1);
	assert_int_equal(remus_dirty_set_init(&wrong, 99), 0);
	assert_int_equal(remus_dirty_collect(d, &wrong), -EINVAL);
	remus_dirty_get_stats(d, &st);
	assert_int_equal(st.collects, 1);
	assert_int_equal(st.pages_reported, 100);
	remus_dirty_set_release(&wrong);
	remus_dirty_close(d);

	/* With a RAM fd its content is readable through the tracker. */
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 100 * 4096), 0);
	assert_int_equal(pwrite(fd, "guest", 5, 4096 * 7), 5);
	o.ram_fd = fd;
	assert_int_equal(remus_dirty_open(&o, &d), 0);
	assert_memory_equal(remus_dirty_ram(d) + 4096 * 7, "guest", 5);
	remus_dirty_close(d);
	close(fd);
	remus_dirty_set_release(&s);
	remus_dirty_close(NULL);

	o.size = 4095;
	assert_int_equal(remus_dirty_open(&o, &d), -EINVAL);
	o.size = 4096;
	o.kind = REMUS_DIRTY_FUSE; /* no mount_dir */
	assert_int_equal(remus_dirty_open(&o, &d), -EINVAL);
}

/* Builds one request: header + @body of @n bytes (+ @tail). */
static size_t req(uint8_t *buf, uint32_t opcode, uint64_t nodeid,
		  const void *body, size_t n, const void *tail, size_t tn)
{
	struct fuse_in_header h = { 0 };

	h.len = (uint32_t)(sizeof(h) + n + tn);
	h.opcode = opcode;
	h.unique = 42;
	h.nodeid = nodeid;
	memcpy(buf, &h, sizeof(h));
	if (n)
		memcpy(buf + sizeof(h), body, n);
	if (tn)
		memcpy(buf + sizeof(h) + n, tail, tn);
	return h.len;
}

static void init_ram(struct remus_fuse_ram *r, uint8_t *buf)
{
	struct fuse_init_in in = { .major = 7, .minor = 45,
				   .max_readahead = 131072,
				   .flags = FUSE_WRITEBACK_CACHE |
					    FUSE_AUTO_INVAL_DATA |
					    FUSE_MAX_PAGES | FUSE_BIG_WRITES };
	struct remus_fuse_reply rep;

	assert_int_equal(remus_fuse_ram_init(r, 64 * 4096), 0);
	remus_fuse_ram_handle(r, buf, req(buf, FUSE_INIT, 0, &in, sizeof(in),
					   NULL, 0), &rep);
	assert_int_equal(rep.hdr.error, 0);
	assert_int_equal(rep.hdr.unique, 42);
	assert_int_equal(rep.hdr.len, sizeof(rep.hdr) + sizeof(rep.body.init));
	assert_int_equal(rep.body.init.minor, FUSE_KERNEL_MINOR_VERSION);
	/* The writeback cache on, the kernel's own invalidation off. */
	assert_true(rep.body.init.flags & FUSE_WRITEBACK_CACHE);
	assert_false(rep.body.init.flags & FUSE_AUTO_INVAL_DATA);
	assert_int_equal(rep.body.init.max_write, REMUS_FUSE_MAX_WRITE);
}

static void test_handler_negotiates_and_serves_one_file(void **state)
{
	static uint8_t buf[8192];
	struct remus_fuse_ram r;
	struct remus_fuse_reply rep;
	struct fuse_init_in noback = { .major = 7, .minor = 31 };
	struct fuse_open_in oin = { .flags = O_RDWR };
	struct fuse_setattr_in sa = { .valid = FATTR_SIZE, .size = 4096 };

	/* Nothing before INIT; INIT without the writeback cache refused. */
	assert_int_equal(remus_fuse_ram_init(&r, 64 * 4096), 0);
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_GETATTR, 1, NULL, 0, NULL,
					   0), &rep);
	assert_int_equal(rep.hdr.error, -EIO);
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_INIT, 0, &noback,
					   sizeof(noback), NULL, 0), &rep);
	assert_int_equal(rep.hdr.error, -EPROTO);
	remus_fuse_ram_release(&r);

	init_ram(&r, buf);
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_LOOKUP, 1, "guest.ram", 10,
					   NULL, 0), &rep);
	assert_int_equal(rep.hdr.error, 0);
	assert_int_equal(rep.body.entry.nodeid, REMUS_FUSE_RAM_INO);
	assert_int_equal(rep.body.entry.attr.size, 64 * 4096);
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_LOOKUP, 1, "other", 6,
					   NULL, 0), &rep);
	assert_int_equal(rep.hdr.error, -ENOENT);
	/* A name without its NUL. */
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_LOOKUP, 1, "guest", 5,
					   NULL, 0), &rep);
	assert_int_equal(rep.hdr.error, -EINVAL);
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_OPEN, 2, &oin,
					   sizeof(oin), NULL, 0), &rep);
	assert_int_equal(rep.hdr.error, 0);
	assert_true(rep.body.open.open_flags & FOPEN_KEEP_CACHE);
	oin.flags = O_RDWR | O_TRUNC;
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_OPEN, 2, &oin,
					   sizeof(oin), NULL, 0), &rep);
	assert_int_equal(rep.hdr.error, -EPERM);
	/* The size never changes. */
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_SETATTR, 2, &sa,
					   sizeof(sa), NULL, 0), &rep);
	assert_int_equal(rep.hdr.error, -EPERM);
	sa.size = 64 * 4096;
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_SETATTR, 2, &sa,
					   sizeof(sa), NULL, 0), &rep);
	assert_int_equal(rep.hdr.error, 0);
	/* No reply to FORGET; ENOSYS to what we do not serve. */
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_FORGET, 2, &sa, 8, NULL,
					   0), &rep);
	assert_true(rep.none);
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_GETXATTR, 2, &sa, 8, NULL,
					   0), &rep);
	assert_int_equal(rep.hdr.error, -ENOSYS);
	/* A length that disagrees with what was read. */
	req(buf, FUSE_GETATTR, 1, NULL, 0, NULL, 0);
	remus_fuse_ram_handle(&r, buf, sizeof(struct fuse_in_header) + 1, &rep);
	assert_int_equal(rep.hdr.error, -EIO);
	remus_fuse_ram_handle(&r, buf, 3, &rep);
	assert_true(rep.none);
	remus_fuse_ram_release(&r);
}

static void test_handler_write_marks_exactly_its_pages(void **state)
{
	static uint8_t buf[3 * 4096 + 256], data[2 * 4096 + 2];
	struct remus_fuse_ram r;
	struct remus_fuse_reply rep;
	struct fuse_write_in w = { 0 };
	struct fuse_read_in rd = { 0 };
	size_t i;

	init_ram(&r, buf);
	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 1);
	/* Two bytes before page 5 ends, through 6, two bytes into 7. */
	w.offset = 6 * 4096 - 2;
	w.size = sizeof(data);
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_WRITE, 2, &w, sizeof(w),
					   data, sizeof(data)), &rep);
	assert_int_equal(rep.hdr.error, 0);
	assert_int_equal(rep.body.write.size, sizeof(data));
	assert_int_equal(r.ndirty, 3);
	assert_int_equal(r.bits[0], UINT64_C(7) << 5);
	assert_memory_equal(r.copy + w.offset, data, sizeof(data));
	/* Rewriting the same pages adds none. */
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_WRITE, 2, &w, sizeof(w),
					   data, sizeof(data)), &rep);
	assert_int_equal(r.ndirty, 3);
	/* Past the end, or more than was sent: refused, nothing marked. */
	w.offset = 63 * 4096;
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_WRITE, 2, &w, sizeof(w),
					   data, sizeof(data)), &rep);
	assert_int_equal(rep.hdr.error, -EFBIG);
	w.offset = 0;
	w.size = sizeof(data) + 1;
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_WRITE, 2, &w, sizeof(w),
					   data, sizeof(data)), &rep);
	assert_int_equal(rep.hdr.error, -EINVAL);
	w.offset = UINT64_MAX - 10;
	w.size = 100;
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_WRITE, 2, &w, sizeof(w),
					   data, 100), &rep);
	assert_int_equal(rep.hdr.error, -EFBIG);
	assert_int_equal(r.ndirty, 3);
	assert_int_equal(r.write_requests, 2);
	/* A READ is served from the copy, cut at the end of the file. */
	rd.offset = 6 * 4096 - 2;
	rd.size = 4;
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_READ, 2, &rd, sizeof(rd),
					   NULL, 0), &rep);
	assert_int_equal(rep.hdr.error, 0);
	assert_int_equal(rep.data_len, 4);
	assert_memory_equal(rep.data, data, 4);
	rd.offset = 63 * 4096 + 100;
	rd.size = 131072;
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_READ, 2, &rd, sizeof(rd),
					   NULL, 0), &rep);
	assert_int_equal(rep.data_len, 4096 - 100);
	assert_int_equal(rep.hdr.len, sizeof(rep.hdr) + 4096 - 100);
	rd.offset = UINT64_MAX;
	remus_fuse_ram_handle(&r, buf, req(buf, FUSE_READ, 2, &rd, sizeof(rd),
					   NULL, 0), &rep);
	assert_int_equal(rep.data_len, 0);
	remus_fuse_ram_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_iterates_pages_and_ranges),
		cmocka_unit_test(test_set_merge_clear_common),
		cmocka_unit_test(test_full_reports_every_page_and_nothing_beyond),
		cmocka_unit_test(test_handler_negotiates_and_serves_one_file),
		cmocka_unit_test(test_handler_write_marks_exactly_its_pages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
