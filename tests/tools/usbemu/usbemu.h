/*
 * usbemu: emulated USB devices in DFU mode for the tests and benchmarks (docs/testing.md, "usbemu").
 *
 * One process owns a umockdev testbed: a fake sysfs and /dev with a bus, hubs and one device per
 * DEVICE on the command line, each answering the usbfs ioctls libusb issues (usbfs.c) with a DFU 1.1 /
 * DfuSe device model (dfu.c) over flash kept in files (memory.c).  COMMAND runs as a child under
 * umockdev's preload and sees the devices as real ones.
 *
 * Threads: umockdev answers ioctls on its own worker thread, the control FIFO, timers and the
 * testbed's changes (plug, unplug) run on the main loop.  Everything a device is, is guarded by
 * usbemu.lock; the trace has its own lock, taken last.
 */
#pragma once

#include <errno.h>
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <umockdev.h>

/* Exit statuses of usbemu itself (COMMAND's own status is passed through). */
enum {
	USBEMU_EXIT_FAILURE = 125, /* usage or setup error */
	USBEMU_EXIT_CANNOT_RUN = 126,
	USBEMU_EXIT_NOT_FOUND = 127,
};

/* DFU 1.1 states and statuses (DFU 1.1 section 6.1.2, the values on the wire). */
enum {
	DFU_STATE_APP_IDLE = 0,
	DFU_STATE_APP_DETACH = 1,
	DFU_STATE_IDLE = 2,
	DFU_STATE_DNLOAD_SYNC = 3,
	DFU_STATE_DNBUSY = 4,
	DFU_STATE_DNLOAD_IDLE = 5,
	DFU_STATE_MANIFEST_SYNC = 6,
	DFU_STATE_MANIFEST = 7,
	DFU_STATE_MANIFEST_WAIT_RESET = 8,
	DFU_STATE_UPLOAD_IDLE = 9,
	DFU_STATE_ERROR = 10,
};

enum {
	DFU_STATUS_OK = 0x00,
	DFU_STATUS_ERR_TARGET = 0x01,
	DFU_STATUS_ERR_FILE = 0x02,
	DFU_STATUS_ERR_WRITE = 0x03,
	DFU_STATUS_ERR_ERASE = 0x04,
	DFU_STATUS_ERR_CHECK_ERASED = 0x05,
	DFU_STATUS_ERR_PROG = 0x06,
	DFU_STATUS_ERR_VERIFY = 0x07,
	DFU_STATUS_ERR_ADDRESS = 0x08,
	DFU_STATUS_ERR_NOTDONE = 0x09,
	DFU_STATUS_ERR_FIRMWARE = 0x0a,
	DFU_STATUS_ERR_VENDOR = 0x0b,
	DFU_STATUS_ERR_USBR = 0x0c,
	DFU_STATUS_ERR_POR = 0x0d,
	DFU_STATUS_ERR_UNKNOWN = 0x0e,
	DFU_STATUS_ERR_STALLEDPKT = 0x0f,
};

/* DFU class requests (bRequest). */
enum {
	DFU_DETACH = 0,
	DFU_DNLOAD = 1,
	DFU_UPLOAD = 2,
	DFU_GETSTATUS = 3,
	DFU_CLRSTATUS = 4,
	DFU_GETSTATE = 5,
	DFU_ABORT = 6,
};

/* DfuSe commands, the first byte of a DNLOAD of block 0 (ST UM0424, AN3156; Particle's two). */
enum {
	DFUSE_GET_COMMANDS = 0x00,
	DFUSE_SET_ADDRESS = 0x21,
	DFUSE_ERASE = 0x41,
	DFUSE_READ_UNPROTECT = 0x92,
	DFUSE_ENTER_SAFE_MODE = 0xfa,
	DFUSE_CLEAR_SECURITY_OVERRIDE = 0xfb,
};

/* DfuSe memory segment access, the letter after each sector group ('a' = 1 ... 'g' = 7). */
enum {
	MEMORY_READABLE = 1,
	MEMORY_ERASABLE = 2,
	MEMORY_WRITABLE = 4,
};

/* How a Particle device looks in normal mode (after leaving DFU). */
typedef enum {
	USBEMU_NORMAL_NONE,         /* no normal mode: the device comes back in DFU mode */
	USBEMU_NORMAL_CDC_CONTROL,  /* Gen 2/3: CDC ACM on interfaces 0 and 1, vendor interface 2 */
	USBEMU_NORMAL_CONTROL_ONLY, /* Gen 4 without USB serial: vendor interface 0 */
} UsbemuNormalLayout;

typedef struct {
	const char *name;        /* on the command line: "particle-photon" */
	const char *description; /* one line for --list-models */
	const char *source;      /* where the facts come from, for --list-models and the docs */
	uint16_t vendor_id;
	uint16_t dfu_product_id;
	uint16_t bcd_device;
	const char *manufacturer;
	const char *dfu_product;
	uint8_t configuration_string; /* index of iConfiguration (0: none) */
	const char *configuration_name;
	uint8_t first_interface_string; /* iInterface of alternate setting 0; n adds n */
	unsigned serial_length;         /* hex digits of a generated serial number */
	bool serial_upper_case;
	uint16_t transfer_size; /* wTransferSize */
	uint8_t dfu_attributes; /* bmAttributes of the DFU functional descriptor */
	const char *layouts[5]; /* DfuSe memory strings, alternate setting 0 first; NULL-terminated */
	uint8_t commands[6];    /* what UPLOAD of block 0 (GET_COMMANDS) lists */
	unsigned n_commands;
	bool mass_erase;                   /* ERASE with no address erases every erasable segment */
	bool read_unprotect;               /* 0x92: erases the flash and resets (the ST ROM) */
	bool manifest_reports_dnload_idle; /* Gen 2: dfuDNLOAD-IDLE where dfuMANIFEST is due */
	unsigned reset_delay_ms;           /* from reporting dfuMANIFEST to the reset */
	const char *device_state_string;   /* string descriptor 0xFA (Gen 3/4: "sm=o"), or NULL */
	/* Normal mode: what the device is after leaving DFU. */
	UsbemuNormalLayout normal_layout;
	uint16_t normal_product_id;
	uint16_t normal_bcd_device;
	const char *normal_product;
	/* Particle: the platform (0 for the ST ROM), and how Device OS behaves in normal mode. */
	uint16_t platform_id;
	bool out_hangs_without_data; /* RTL872x: an OUT control request with no data stage never completes */
	uint32_t ota_max_size;       /* the OTA staging area: the largest module START accepts */
} UsbemuModel;

const UsbemuModel *usbemu_model_find(const char *name);
const UsbemuModel *usbemu_model_get(unsigned i); /* NULL past the last */

/* A contiguous run of sectors of one size and access. */
typedef struct {
	uint32_t start;
	uint32_t size;
	uint32_t page_size;
	unsigned access;
} UsbemuSegment;

/* One alternate setting's memory, kept in STATE-DIR/<name>.bin, mapped shared. */
typedef struct {
	char *layout; /* the DfuSe memory string, as the device reports it */
	char *name;   /* "Internal Flash" */
	char *path;   /* STATE-DIR/internal-flash.bin */
	uint32_t base;
	uint32_t size;
	UsbemuSegment *segments;
	unsigned n_segments;
	uint8_t *bytes; /* the file, mapped */
	bool fresh;     /* the file was made (erased) by this run */
} UsbemuMemory;

bool usbemu_memory_parse_layout(const char *layout, UsbemuMemory *memory, GError **error);
bool usbemu_memory_open(UsbemuMemory *memory, const char *state_dir, GError **error);
/* Device Protection: every segment reads "b" in the layout, and DfuSe may neither read, erase nor write. */
void usbemu_memory_protect(UsbemuMemory *memory);
void usbemu_memory_sync(UsbemuMemory *memory);
void usbemu_memory_clear(UsbemuMemory *memory);
const UsbemuSegment *usbemu_memory_segment_at(const UsbemuMemory *memory, uint32_t address);
/* The flash operations: each returns a DFU status; a refused one changes nothing. */
uint8_t usbemu_memory_erase_page(UsbemuMemory *memory, uint32_t address);
uint8_t usbemu_memory_erase_all(UsbemuMemory *memory);
uint8_t usbemu_memory_write(UsbemuMemory *memory, uint32_t address, const uint8_t *data, uint32_t length);
/* Copies up to `length` bytes (fewer at the memory's end); -1 with *status when it may not. */
int usbemu_memory_read(const UsbemuMemory *memory, uint32_t address, uint8_t *data, uint32_t length, uint8_t *status);

typedef enum {
	USBEMU_MODE_DFU,
	USBEMU_MODE_NORMAL,
	USBEMU_MODE_HUB,
} UsbemuMode;

typedef struct UsbemuDevice UsbemuDevice;
typedef struct UsbemuInstance UsbemuInstance;
typedef struct UsbemuParticle UsbemuParticle; /* particle.h */

/* What usbemu_control() returns for a transfer the device never completes (its URB stays submitted). */
#define USBEMU_CONTROL_HANG (-EINPROGRESS)
/* `stall N REQUEST` of a Particle service request: this plus its bRequest (DFU's are below 0x100). */
#define USBEMU_STALL_PARTICLE 0x100

/* An open file descriptor of the device node (one UMockdevIoctlClient). */
typedef struct {
	UsbemuInstance *instance; /* NULL: it opened a node that is gone */
	GQueue reapable;          /* UMockdevIoctlData of completed URBs, oldest first */
	GQueue hung;              /* UMockdevIoctlData of URBs the device never completes, until discarded */
} UsbemuClient;

#define USBEMU_MAX_INTERFACES 4

/* One enumeration of a device: a devnum, a node, the files open on it. */
struct UsbemuInstance {
	UsbemuDevice *device;
	uint8_t devnum;
	char *devnode; /* /dev/bus/usb/001/003 */
	char *fifo_path;
	int fifo_fd; /* the node is this FIFO: writable (POLLOUT) exactly when a URB can be reaped */
	bool fifo_ready;
	bool plugged;
	bool gone;      /* unplugged and out of the testbed: freed with its last file */
	GList *clients; /* UsbemuClient */
	UsbemuClient *claimed_by[USBEMU_MAX_INTERFACES];
};

/* What the device says about itself in the mode it is in (descriptor.c). */
typedef struct {
	uint16_t product_id;
	uint16_t bcd_device;
	uint8_t device_class, device_subclass, device_protocol;
	GBytes *device_descriptor; /* 18 bytes */
	GBytes *configuration;     /* the whole configuration descriptor */
	GHashTable *strings;       /* index -> UTF-8 text (index 0, the languages, is implicit) */
	unsigned n_interfaces;
	uint8_t alternate_settings[USBEMU_MAX_INTERFACES];
	const char *manufacturer, *product, *serial;
} UsbemuIdentity;

struct UsbemuDevice {
	unsigned index;           /* 1-based, in command-line order (0 for hubs) */
	char *label;              /* "dev1", "hub1-1" in the trace */
	const UsbemuModel *model; /* NULL for a hub */
	char *state_dir;
	char *serial;
	bool no_sysfs_serial; /* sysfs has no `serial` attribute: a host reads the string descriptor */
	int lock_fd;
	UsbemuMemory *memories;
	unsigned n_memories;

	/* Where it is plugged in: the same after every unplug and re-enumeration. */
	uint8_t busnum;
	char *port_path; /* "1-1.4" */
	char *syspath;   /* /sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.4 */
	char *devpath;   /* "1.4", sysfs' devpath attribute */

	UsbemuMode mode;      /* what it is now (or was when unplugged) */
	UsbemuMode next_mode; /* what it comes back as after a reset */
	UsbemuIdentity identity;
	UMockdevIoctlBase *handler; /* one for the device's life: old clients still reach it */
	UsbemuInstance *current;    /* NULL while unplugged */
	GList *retired;             /* earlier instances with files still open */
	guint reset_source;         /* a pending reset (after manifestation, DETACH) */
	GPtrArray *child_syspaths;  /* the interfaces and tty plugged in under it, parents first */
	char *tty_devnode;          /* "/dev/ttyACM0" while its CDC ACM tty is there */
	char *tty_pty;              /* the pty slave the testbed made for it ("/dev/pts/3"), kept for replugs */
	guint tty_source;           /* reads what is written to the tty (the testbed's pty master) */
	guint tty_retry_source;     /* puts tty_source back after the master read EIO (no file open) */

	/* DFU state (dfu.c). */
	uint8_t state;
	uint8_t status;
	uint8_t alternate;
	uint32_t address_pointer;
	bool op_pending; /* a DNLOAD waits for GETSTATUS to be carried out */
	uint16_t op_block;
	uint16_t op_length;
	uint8_t op_data[4096];
	uint8_t op_result;     /* status of the operation carried out, reported once it is done */
	uint8_t op_next_state; /* where a successful operation leads */
	int64_t busy_until;    /* monotonic us: dfuDNBUSY until then */

	/* Device OS in normal mode (particle.h); NULL for a device without one (the ST ROM). */
	UsbemuParticle *particle;

	/* Faults from the control FIFO. */
	uint32_t poll_timeout_ms; /* `busy N MS`: reported in bwPollTimeout, and honoured */
	bool stall_armed;
	int stall_request; /* bRequest to stall (a Particle one: USBEMU_STALL_PARTICLE + it), -1 for any */
	unsigned stall_skip;
};

typedef struct {
	GMutex lock;
	UMockdevTestbed *testbed;
	char *root_dir;
	GPtrArray *devices; /* UsbemuDevice, in command-line order */
	GPtrArray *hubs;    /* UsbemuDevice: the root hub, then the hubs the devices hang off */
	uint8_t devnum_next;
	bool devnum_used[128];
	bool closing;
	int64_t start_us;
} Usbemu;

extern Usbemu usbemu;

/* model.c: the identity a device shows in its current mode. */
void usbemu_identity_build(UsbemuDevice *device);
void usbemu_identity_clear(UsbemuIdentity *identity);
/* The umockdev-record text of the device as plugged in as `devnum` (descriptor.c). */
char *usbemu_sysfs_record(const UsbemuDevice *device, uint8_t devnum);
/*
 * The records of what sits under the device in its mode, parents first: a Particle device's
 * interfaces in normal mode and, with CDC ACM, the tty of interface 0 (its sysfs path and node
 * returned, NULL without one); its node is made with `make_node`.
 */
GPtrArray *usbemu_sysfs_child_records(const UsbemuDevice *device, bool make_node, char **tty_syspath,
                                      char **tty_devnode);

/* dfu.c: a control transfer to the device; returns bytes transferred or -EPIPE (a stall). */
int usbemu_control(UsbemuDevice *device, const uint8_t setup[8], uint8_t *data);
void usbemu_dfu_reset_state(UsbemuDevice *device);

/* usbfs.c: the ioctl handler of a device's node, and of every other /dev file (pitfall 7). */
UMockdevIoctlBase *usbemu_usbfs_handler_new(UsbemuDevice *device);
bool usbemu_usbfs_install_passthrough(GError **error);
void usbemu_instance_set_unplugged(UsbemuInstance *instance);
void usbemu_instance_maybe_free(UsbemuInstance *instance);

/* bus.c: the topology, and plugging devices in and out of the testbed (main thread). */
bool usbemu_bus_init(GError **error);
bool usbemu_bus_plug(UsbemuDevice *device, UsbemuMode mode, GError **error);
void usbemu_bus_unplug(UsbemuDevice *device);
/* Called with the lock held, from any thread: unplug after `delay_ms`, plug back as `mode`. */
void usbemu_bus_schedule_reset(UsbemuDevice *device, UsbemuMode mode, unsigned delay_ms);
void usbemu_bus_cancel_reset(UsbemuDevice *device);

/* trace.c: --trace FILE, one line per control transfer and per event. */
bool usbemu_trace_open(const char *path, GError **error);
void usbemu_trace_close(void);
bool usbemu_trace_enabled(void);
void usbemu_trace(const char *format, ...) G_GNUC_PRINTF(1, 2);
const char *usbemu_dfu_state_name(uint8_t state);
const char *usbemu_dfu_status_name(uint8_t status);
const char *usbemu_request_name(uint8_t request_type, uint8_t request, char buffer[8]);
int64_t usbemu_now_us(void);
