/*
 * A device's memories: what each DfuSe layout string says, kept in a file per memory in the
 * state directory and mapped shared, so every write is in the page cache at once (the next run, or
 * a test reading the file, sees it) and msync() at manifestation, unplug and exit makes it durable.
 *
 * Flash rules, as the access letters of the layout say: only erasable sectors are erased (a page
 * at a time, to 0xFF); in an erasable sector a write needs every byte it covers erased (flash can
 * only clear bits, and a DfuSe loader checks before it programs: errCHECK_ERASED); a sector that is
 * writable but not erasable ('e': DCT, option bytes) takes writes as they come; a read needs the
 * readable bit.  A refused operation changes nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "usbemu.h"

/* "Internal Flash" -> "internal-flash.bin" */
static char *
memory_file_name(const char *name)
{
	GString *file = g_string_new(NULL);

	for (const char *p = name; *p != '\0'; p++) {
		if (g_ascii_isalnum(*p))
			g_string_append_c(file, g_ascii_tolower(*p));
		else if (file->len > 0 && file->str[file->len - 1] != '-')
			g_string_append_c(file, '-');
	}
	while (file->len > 0 && file->str[file->len - 1] == '-')
		g_string_truncate(file, file->len - 1);
	g_string_append(file, ".bin");
	return g_string_free(file, FALSE);
}

/* One "NN*SSSMx" sector group: count, size, multiplier (K, M or none), access letter a-g. */
static bool
parse_group(const char **p, uint32_t *count, uint32_t *page_size, unsigned *access)
{
	char *end;
	unsigned long n = strtoul(*p, &end, 10);

	if (end == *p || *end != '*' || n == 0)
		return false;
	*count = (uint32_t)n;
	*p = end + 1;
	n = strtoul(*p, &end, 10);
	if (end == *p || n == 0)
		return false;
	switch (*end) {
	case 'K':
		n *= 1024;
		end++;
		break;
	case 'M':
		n *= 1024 * 1024;
		end++;
		break;
	case ' ':
	case 'B':
		end++;
		break;
	default:
		break;
	}
	if (*end < 'a' || *end > 'g')
		return false;
	*page_size = (uint32_t)n;
	*access = (unsigned)(*end - 'a' + 1);
	*p = end + 1;
	return true;
}

bool
usbemu_memory_parse_layout(const char *layout, UsbemuMemory *memory, GError **error)
{
	g_autoptr(GArray) segments = g_array_new(FALSE, TRUE, sizeof(UsbemuSegment));
	const char *slash = strchr(layout, '/');
	const char *p;
	uint32_t address;
	char *end;

	if (layout[0] != '@' || slash == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "layout '%s': no '@NAME/'", layout);
		return false;
	}
	memory->layout = g_strdup(layout);
	memory->name = g_strstrip(g_strndup(layout + 1, (gsize)(slash - layout - 1)));
	p = slash + 1;
	address = (uint32_t)strtoul(p, &end, 16);
	if (end == p || *end != '/') {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "layout '%s': no '/0xADDRESS/'", layout);
		return false;
	}
	memory->base = address;
	p = end + 1;
	for (;;) {
		UsbemuSegment segment = {.start = address};
		uint32_t count;

		if (!parse_group(&p, &count, &segment.page_size, &segment.access)) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "layout '%s': bad sector group at '%s'",
			            layout, p);
			return false;
		}
		segment.size = count * segment.page_size;
		address += segment.size;
		g_array_append_val(segments, segment);
		if (*p == '\0')
			break;
		if (*p != ',') {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
			            "layout '%s': one memory of contiguous sectors expected, found '%s'", layout, p);
			return false;
		}
		p++;
	}
	memory->size = address - memory->base;
	memory->n_segments = segments->len;
	memory->segments = (UsbemuSegment *)g_array_free(g_steal_pointer(&segments), FALSE);
	return true;
}

bool
usbemu_memory_open(UsbemuMemory *memory, const char *state_dir, GError **error)
{
	g_autofree char *file_name = memory_file_name(memory->name);
	struct stat st;
	bool fresh;
	void *map;
	int fd;

	memory->path = g_build_filename(state_dir, file_name, NULL);
	fd = open(memory->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || fstat(fd, &st) != 0) {
		int saved = errno;
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "%s: %s", memory->path, g_strerror(saved));
		if (fd >= 0)
			close(fd);
		return false;
	}
	fresh = st.st_size == 0;
	if (!fresh && st.st_size != (off_t)memory->size) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
		            "%s is %lld bytes, but the device's %s ('%s') is %u: a state directory of another model?",
		            memory->path, (long long)st.st_size, memory->name, memory->layout, memory->size);
		close(fd);
		return false;
	}
	if (fresh && ftruncate(fd, memory->size) != 0) {
		int saved = errno;
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "%s: %s", memory->path, g_strerror(saved));
		close(fd);
		return false;
	}
	map = mmap(NULL, memory->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		int saved = errno;
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "mmap %s: %s", memory->path,
		            g_strerror(saved));
		return false;
	}
	memory->bytes = map;
	memory->fresh = fresh;
	/* A new device's memory is erased. */
	if (fresh) {
		memset(memory->bytes, 0xff, memory->size);
		usbemu_memory_sync(memory);
	}
	return true;
}

void
usbemu_memory_protect(UsbemuMemory *memory)
{
	char *slash = strchr(memory->layout, '/');

	/* The access letter ends each sector group: before a ',' and at the end. */
	slash = slash != NULL ? strchr(slash + 1, '/') : NULL;
	for (char *p = slash; p != NULL && *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'g' && (p[1] == ',' || p[1] == '\0'))
			*p = 'b';
	}
	/* A protected bootloader refuses every DfuSe operation on it. */
	for (unsigned i = 0; i < memory->n_segments; i++)
		memory->segments[i].access = 0;
}

void
usbemu_memory_sync(UsbemuMemory *memory)
{
	if (memory->bytes != NULL && msync(memory->bytes, memory->size, MS_SYNC) != 0)
		g_printerr("usbemu: msync %s: %s\n", memory->path, g_strerror(errno));
}

void
usbemu_memory_clear(UsbemuMemory *memory)
{
	if (memory->bytes != NULL) {
		usbemu_memory_sync(memory);
		munmap(memory->bytes, memory->size);
	}
	g_free(memory->layout);
	g_free(memory->name);
	g_free(memory->path);
	g_free(memory->segments);
	memset(memory, 0, sizeof *memory);
}

const UsbemuSegment *
usbemu_memory_segment_at(const UsbemuMemory *memory, uint32_t address)
{
	for (unsigned i = 0; i < memory->n_segments; i++) {
		const UsbemuSegment *segment = &memory->segments[i];
		if (address >= segment->start && address - segment->start < segment->size)
			return segment;
	}
	return NULL;
}

uint8_t
usbemu_memory_erase_page(UsbemuMemory *memory, uint32_t address)
{
	const UsbemuSegment *segment = usbemu_memory_segment_at(memory, address);
	uint32_t page;

	/* AN3156: a page address that is wrong or not allowed is errTARGET. */
	if (segment == NULL || !(segment->access & MEMORY_ERASABLE))
		return DFU_STATUS_ERR_TARGET;
	page = segment->start + (address - segment->start) / segment->page_size * segment->page_size;
	memset(memory->bytes + (page - memory->base), 0xff, segment->page_size);
	return DFU_STATUS_OK;
}

uint8_t
usbemu_memory_erase_all(UsbemuMemory *memory)
{
	for (unsigned i = 0; i < memory->n_segments; i++) {
		const UsbemuSegment *segment = &memory->segments[i];
		if (segment->access & MEMORY_ERASABLE)
			memset(memory->bytes + (segment->start - memory->base), 0xff, segment->size);
	}
	return DFU_STATUS_OK;
}

uint8_t
usbemu_memory_write(UsbemuMemory *memory, uint32_t address, const uint8_t *data, uint32_t length)
{
	uint8_t *target;

	if (address < memory->base || address - memory->base > memory->size ||
	    length > memory->size - (address - memory->base))
		return DFU_STATUS_ERR_ADDRESS;
	target = memory->bytes + (address - memory->base);
	for (uint32_t i = 0; i < length;) {
		const UsbemuSegment *segment = usbemu_memory_segment_at(memory, address + i);
		uint32_t in_segment;

		if (segment == NULL)
			return DFU_STATUS_ERR_ADDRESS;
		in_segment = MIN(length - i, segment->start + segment->size - (address + i));
		if (!(segment->access & MEMORY_WRITABLE))
			return DFU_STATUS_ERR_WRITE;
		if (segment->access & MEMORY_ERASABLE) {
			for (uint32_t j = i; j < i + in_segment; j++) {
				if (target[j] != 0xff)
					return DFU_STATUS_ERR_CHECK_ERASED;
			}
		}
		i += in_segment;
	}
	memcpy(target, data, length);
	return DFU_STATUS_OK;
}

int
usbemu_memory_read(const UsbemuMemory *memory, uint32_t address, uint8_t *data, uint32_t length, uint8_t *status)
{
	uint32_t available;

	if (address < memory->base || address - memory->base >= memory->size) {
		*status = DFU_STATUS_ERR_ADDRESS;
		return -1;
	}
	available = MIN(length, memory->size - (address - memory->base));
	for (uint32_t i = 0; i < available;) {
		const UsbemuSegment *segment = usbemu_memory_segment_at(memory, address + i);

		if (segment == NULL || !(segment->access & MEMORY_READABLE)) {
			*status = segment == NULL ? DFU_STATUS_ERR_ADDRESS : DFU_STATUS_ERR_TARGET;
			return -1;
		}
		i += MIN(available - i, segment->start + segment->size - (address + i));
	}
	memcpy(data, memory->bytes + (address - memory->base), available);
	return (int)available;
}
