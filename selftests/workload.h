/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What gupvm's own workloads share: KTAP in the kernel selftests' format
 * (one "ok N desc" or "not ok N desc" per case, "# SKIP reason" for a case
 * the kernel cannot serve), so that gupvm reads every case as a testcase;
 * the pin counters; and the three kinds of memory GUP treats differently
 * (base pages, THP, hugetlb). Kept here rather than taken from the tree's
 * kselftest.h, whose functions changed between 5.10 and 7.x.
 */
#ifndef GUPVM_WORKLOAD_H
#define GUPVM_WORKLOAD_H

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ktap_cases, ktap_failures;

static inline void ktap_plan(int cases)
{
	printf("TAP version 13\n1..%d\n", cases);
	fflush(stdout);
}

static inline void ktap_vresult(const char *status, const char *directive, const char *fmt, va_list args)
{
	printf("%s %d ", status, ++ktap_cases);
	vprintf(fmt, args);
	if (directive)
		printf(" # %s", directive);
	printf("\n");
	fflush(stdout);
}

/* A case's result: passed when ok is true. */
static inline void __attribute__((format(printf, 2, 3))) ktap_result(int ok, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	ktap_vresult(ok ? "ok" : "not ok", NULL, fmt, args);
	va_end(args);
	ktap_failures += !ok;
}

static inline void __attribute__((format(printf, 2, 3))) ktap_skip(const char *reason, const char *fmt, ...)
{
	char directive[256];
	va_list args;

	snprintf(directive, sizeof(directive), "SKIP %s", reason);
	va_start(args, fmt);
	ktap_vresult("ok", directive, fmt, args);
	va_end(args);
}

/* Why the case failed, on the line before its result. */
static inline void __attribute__((format(printf, 1, 2))) ktap_diag(const char *fmt, ...)
{
	va_list args;

	printf("# ");
	va_start(args, fmt);
	vprintf(fmt, args);
	va_end(args);
	printf("\n");
	fflush(stdout);
}

static inline int ktap_exit(void)
{
	printf("# Totals: pass:%d fail:%d\n", ktap_cases - ktap_failures, ktap_failures);
	return ktap_failures ? 1 : 0;
}

/* /proc/vmstat's pin counters: what FOLL_PIN took and gave back. */
struct pin_counters {
	long acquired, released;
};

static inline struct pin_counters pin_counters(void)
{
	struct pin_counters counters = { -1, -1 };
	char name[64];
	long value;
	FILE *vmstat, *refresh = fopen("/proc/sys/vm/stat_refresh", "w");

	/* Fold the per-CPU deltas first, or the counters lag by a few pages. */
	if (refresh) {
		fputs("1", refresh);
		fclose(refresh);
	}
	vmstat = fopen("/proc/vmstat", "r");

	while (vmstat && fscanf(vmstat, "%63s %ld", name, &value) == 2) {
		if (!strcmp(name, "nr_foll_pin_acquired"))
			counters.acquired = value;
		else if (!strcmp(name, "nr_foll_pin_released"))
			counters.released = value;
	}
	if (vmstat)
		fclose(vmstat);
	return counters;
}

/* Pins held now beyond those held at `before`. */
static inline long pins_held_since(struct pin_counters before)
{
	struct pin_counters now = pin_counters();

	return (now.acquired - before.acquired) - (now.released - before.released);
}

/*
 * Pins held beyond those at `before`, once they have had up to `seconds` to
 * come down to `expected`: some pin users let go in a worker (a closed
 * io_uring's buffers are unregistered by io_ring_exit_work).
 */
static inline long pins_settle(struct pin_counters before, long expected, int seconds)
{
	long held;

	for (int waited = 0; (held = pins_held_since(before)) != expected && waited < seconds * 10; waited++)
		usleep(100000);
	return held;
}

static inline long pins_back_since(struct pin_counters before, int seconds)
{
	return pins_settle(before, 0, seconds);
}

/* A pattern of bytes that differs from page to page and from seed to seed, and whether memory holds it. */
static inline void fill_pattern(char *memory, size_t size, unsigned int seed)
{
	for (size_t i = 0; i < size; i++)
		memory[i] = (char)(seed * 31 + i * 7 + i / 4093);
}

static inline int holds_pattern(const char *memory, size_t size, unsigned int seed)
{
	for (size_t i = 0; i < size; i++)
		if (memory[i] != (char)(seed * 31 + i * 7 + i / 4093))
			return 0;
	return 1;
}

/* The kinds of memory GUP treats differently, each mapped as `folios` folios. */
enum memory_kind { BASE_PAGES, THP, HUGETLB };
static const char *const memory_kind_names[] = { "base pages", "THP", "hugetlb" };

struct region {
	enum memory_kind kind;
	char *addr;
	size_t size;
	size_t folio_size; /* the page size for base pages */
	char *mapping; /* what mmap gave, around the aligned range */
	size_t mapping_size;
};

static inline size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static inline size_t read_size(const char *path, const char *key)
{
	char line[256];
	size_t value = 0;
	FILE *file = fopen(path, "r");

	while (file && fgets(line, sizeof(line), file)) {
		if (!key) {
			value = strtoull(line, NULL, 0);
			break;
		}
		if (!strncmp(line, key, strlen(key))) {
			value = strtoull(line + strlen(key), NULL, 0) * 1024; /* meminfo: kB */
			break;
		}
	}
	if (file)
		fclose(file);
	return value;
}

static inline size_t thp_size(void)
{
	return read_size("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", NULL);
}

static inline size_t hugetlb_size(void)
{
	return read_size("/proc/meminfo", "Hugepagesize:");
}

/* Is [addr, addr + size) backed by THP? From /proc/self/smaps; true where the kernel has no smaps. */
static inline int backed_by_thp(const char *addr, size_t size)
{
	char line[256];
	unsigned long start, end, anon_huge_kb = 0;
	int in_range = 0, found = 0;
	FILE *smaps = fopen("/proc/self/smaps", "r");

	if (!smaps)
		return 1;
	while (fgets(line, sizeof(line), smaps)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2)
			in_range = start <= (unsigned long)addr && (unsigned long)addr < end;
		else if (in_range && sscanf(line, "AnonHugePages: %lu kB", &anon_huge_kb) == 1)
			found = 1;
	}
	fclose(smaps);
	return !found || anon_huge_kb * 1024 >= size;
}

/*
 * Map `folios` folios of the kind, written so that they are present, or say
 * why the kernel cannot give them (returned as the skip reason).
 */
static inline const char *map_region(enum memory_kind kind, size_t folios, struct region *region)
{
	size_t folio = kind == BASE_PAGES ? page_size() : kind == THP ? thp_size() : hugetlb_size();
	char *area;

	region->kind = kind;
	if (!folio)
		return kind == THP ? "this kernel has no THP" : "this kernel has no hugetlb";
	region->folio_size = folio;
	region->size = folio * folios;
	if (kind == HUGETLB) {
		area = mmap(NULL, region->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (area == MAP_FAILED)
			return "no free huge pages";
		region->addr = region->mapping = area;
		region->mapping_size = region->size;
	} else {
		/* THP: a folio-aligned range inside a larger mapping. */
		area = mmap(NULL, region->size + folio, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (area == MAP_FAILED)
			return "mmap failed";
		region->mapping = area;
		region->mapping_size = region->size + folio;
		region->addr = (char *)(((uintptr_t)area + folio - 1) & ~(uintptr_t)(folio - 1));
		madvise(region->addr, region->size, kind == THP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	}
	memset(region->addr, 0x5a, region->size);
	if (kind == THP && !backed_by_thp(region->addr, region->size))
		return "the kernel gave no THP for the range";
	return NULL;
}

static inline void unmap_region(struct region *region)
{
	munmap(region->mapping, region->mapping_size);
}

#endif
