/* A stand-in libHD.so for tests: the OpenHaptics HD symbols pyOpenHaptics calls, over a
 * simulated arm. The tip moves on a circle (radius 30 mm, 0.5 Hz, z = 0 plane) centred on
 * the workspace origin; button 1 is held during the second half of each turn. A scheduler
 * pthread runs the scheduled callbacks at ~1 kHz (absolute deadlines); the force set inside
 * a frame is committed at hdEndFrame and kept as the "last force" tests read back through
 * the osteon_stub_* functions. Set OSTEON_FAKE_HD_NO_DEVICE=1 to simulate an unplugged arm.
 * Set OSTEON_FAKE_HD_TIMING=FILE to have hdStopScheduler write, per scheduler tick, its
 * deadline and the moment its callbacks returned (CLOCK_MONOTONIC seconds, float64 pairs):
 * a Python callback waiting for the GIL shows up as a late return.
 * Build: gcc -shared -fPIC -O2 -pthread -Wl,-soname,libHD.so -o libHD.so fake_libhd.c -lm
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef unsigned int HHD;
typedef unsigned int HDenum;
typedef unsigned int HDCallbackCode;
typedef unsigned long HDSchedulerHandle;
typedef HDCallbackCode (*HDSchedulerCallback)(void *);
typedef struct { unsigned int errorCode; int internalErrorCode; HHD hHD; } HDErrorInfo;

#define HD_SUCCESS 0x000
#define HD_COMM_ERROR 0x0302
#define HD_INVALID_HANDLE 0xFFFFFFFFu
#define HD_CALLBACK_DONE 0
#define HD_CURRENT_BUTTONS 0x2000
#define HD_CURRENT_POSITION 0x2050
#define HD_CURRENT_VELOCITY 0x2051
#define HD_CURRENT_TRANSFORM 0x2052
#define HD_MAX_WORKSPACE_DIMENSIONS 0x2550
#define HD_USABLE_WORKSPACE_DIMENSIONS 0x2551
#define HD_NOMINAL_MAX_STIFFNESS 0x2602
#define HD_NOMINAL_MAX_FORCE 0x2603
#define HD_INSTANTANEOUS_UPDATE_RATE 0x2601
#define HD_CURRENT_FORCE 0x2700
#define HD_DEVICE_MODEL_TYPE 0x2501
#define HD_DEVICE_VENDOR 0x2503
#define HD_FORCE_OUTPUT 0x4000
#define HD_CALIBRATION_OK 0x5000
#define HD_CALIBRATION_NEEDS_UPDATE 0x5001

#define MAX_CALLBACKS 16
#define RADIUS_MM 30.0
#define TURN_HZ 0.5

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t scheduler;
static volatile int running = 0;
static int device_open = 0, device_disabled = 0, force_enabled = 0, calibrated = 0;
static unsigned int pending_error = HD_SUCCESS;
static double sim_t_s = 0.0;
static double frame_force[3], last_force[3];
static long frames = 0, ticks = 0;
static struct { HDSchedulerCallback fn; void *data; int active; } callbacks[MAX_CALLBACKS];
#define MAX_TIMED 600000
static double timed_ticks[MAX_TIMED][2];
static long timed = 0;

static double seconds_of(const struct timespec *t) { return t->tv_sec + t->tv_nsec * 1e-9; }

static void arm_position(double t, double *p) {
    double a = 2.0 * M_PI * TURN_HZ * t;
    p[0] = RADIUS_MM * cos(a); p[1] = RADIUS_MM * sin(a); p[2] = 0.0;
}

static void arm_velocity(double t, double *v) {
    double a = 2.0 * M_PI * TURN_HZ * t, w = 2.0 * M_PI * TURN_HZ;
    v[0] = -RADIUS_MM * w * sin(a); v[1] = RADIUS_MM * w * cos(a); v[2] = 0.0;
}

HHD hdInitDevice(const char *name) {
    (void)name;
    const char *no_device = getenv("OSTEON_FAKE_HD_NO_DEVICE");
    if (no_device && no_device[0] == '1') { pending_error = HD_COMM_ERROR; return HD_INVALID_HANDLE; }
    device_open = 1; device_disabled = 0;
    return 1;
}
void hdDisableDevice(HHD id) { (void)id; device_open = 0; device_disabled = 1; }
HHD hdGetCurrentDevice(void) { return 1; }
HDErrorInfo hdGetError(void) {
    HDErrorInfo info = { pending_error, 0, 1 };
    pending_error = HD_SUCCESS;
    return info;
}
void hdEnable(HDenum cap) { if (cap == HD_FORCE_OUTPUT) force_enabled = 1; }
void hdDisable(HDenum cap) { if (cap == HD_FORCE_OUTPUT) force_enabled = 0; }
const char *hdGetString(HDenum what) {
    return what == HD_DEVICE_VENDOR ? "Osteon test" : "Osteon stand-in arm";
}
unsigned int hdCheckCalibration(void) { return calibrated ? HD_CALIBRATION_OK : HD_CALIBRATION_NEEDS_UPDATE; }
void hdUpdateCalibration(int style) { (void)style; calibrated = 1; }

void hdGetDoublev(HDenum what, double *out) {
    double p[3], v[3];
    switch (what) {
    case HD_CURRENT_POSITION: arm_position(sim_t_s, out); break;
    case HD_CURRENT_VELOCITY: arm_velocity(sim_t_s, out); break;
    case HD_CURRENT_TRANSFORM:
        /* column-major 4x4, identity rotation, translation in elements 12..14 */
        memset(out, 0, 16 * sizeof(double));
        out[0] = out[5] = out[10] = out[15] = 1.0;
        arm_position(sim_t_s, p);
        out[12] = p[0]; out[13] = p[1]; out[14] = p[2];
        break;
    case HD_NOMINAL_MAX_FORCE: out[0] = 3.3; break;
    case HD_NOMINAL_MAX_STIFFNESS: out[0] = 1.26; break;
    case HD_INSTANTANEOUS_UPDATE_RATE: out[0] = 1000.0; break;
    case HD_MAX_WORKSPACE_DIMENSIONS:
    case HD_USABLE_WORKSPACE_DIMENSIONS:
        out[0] = -80; out[1] = -60; out[2] = -35; out[3] = 80; out[4] = 60; out[5] = 35; break;
    case HD_CURRENT_FORCE: memcpy(out, last_force, sizeof last_force); break;
    default: (void)v; break;
    }
}
void hdGetIntegerv(HDenum what, int *out) {
    if (what == HD_CURRENT_BUTTONS) out[0] = fmod(sim_t_s * TURN_HZ, 1.0) >= 0.5 ? 1 : 0;
}
void hdSetDoublev(HDenum what, const double *value) {
    if (what == HD_CURRENT_FORCE) memcpy(frame_force, value, sizeof frame_force);
}
void hdBeginFrame(HHD id) { (void)id; }
void hdEndFrame(HHD id) {
    (void)id;
    if (force_enabled) memcpy(last_force, frame_force, sizeof last_force);
    frames++;
}

static void *scheduler_main(void *arg) {
    (void)arg;
    struct timespec next, start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    next = start;
    while (running) {
        next.tv_nsec += 1000000;
        if (next.tv_nsec >= 1000000000) { next.tv_nsec -= 1000000000; next.tv_sec++; }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        sim_t_s = (next.tv_sec - start.tv_sec) + (next.tv_nsec - start.tv_nsec) * 1e-9;
        pthread_mutex_lock(&lock);
        for (int i = 0; i < MAX_CALLBACKS; i++) {
            if (callbacks[i].active && callbacks[i].fn(callbacks[i].data) == HD_CALLBACK_DONE)
                callbacks[i].active = 0;
        }
        pthread_mutex_unlock(&lock);
        if (timed < MAX_TIMED) {
            struct timespec done;
            clock_gettime(CLOCK_MONOTONIC, &done);
            timed_ticks[timed][0] = seconds_of(&next);
            timed_ticks[timed][1] = seconds_of(&done);
            timed++;
        }
        ticks++;
    }
    return NULL;
}

void hdStartScheduler(void) {
    if (running) return;
    running = 1;
    pthread_create(&scheduler, NULL, scheduler_main, NULL);
}
void hdStopScheduler(void) {
    if (!running) return;
    running = 0;
    pthread_join(scheduler, NULL);
    const char *timing = getenv("OSTEON_FAKE_HD_TIMING");
    if (timing && timing[0]) {
        FILE *out = fopen(timing, "wb");
        if (out) { fwrite(timed_ticks, sizeof timed_ticks[0], (size_t)timed, out); fclose(out); }
    }
    timed = 0;
}
HDSchedulerHandle hdScheduleAsynchronous(HDSchedulerCallback fn, void *data, unsigned short priority) {
    (void)priority;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_CALLBACKS; i++) {
        if (!callbacks[i].active) {
            callbacks[i].fn = fn; callbacks[i].data = data; callbacks[i].active = 1;
            pthread_mutex_unlock(&lock);
            return (HDSchedulerHandle)(i + 1);
        }
    }
    pthread_mutex_unlock(&lock);
    return 0;
}
void hdScheduleSynchronous(HDSchedulerCallback fn, void *data, unsigned short priority) {
    (void)priority;
    while (fn(data) != HD_CALLBACK_DONE) {}
}
void hdUnschedule(HDSchedulerHandle handle) {
    pthread_mutex_lock(&lock);
    if (handle >= 1 && handle <= MAX_CALLBACKS) callbacks[handle - 1].active = 0;
    pthread_mutex_unlock(&lock);
}

/* test-only read-back */
void osteon_stub_last_force(double *out) { memcpy(out, last_force, sizeof last_force); }
int osteon_stub_device_disabled(void) { return device_disabled; }
int osteon_stub_scheduler_running(void) { return running; }
long osteon_stub_frames(void) { return frames; }
int osteon_stub_calibrated(void) { return calibrated; }
