//! The few system calls the harness makes itself: pinning a thread to a core, reading another
//! thread's CPU clock, and the wall clock that frame timestamps use.

#![allow(unsafe_code)]

use std::io;
use std::os::unix::thread::JoinHandleExt;
use std::thread::JoinHandle;
use std::time::Duration;

/// Pins the calling thread to `cpu`, or lets it run anywhere (`None`). Best effort: on a
/// machine with fewer cores the thread stays where it is.
pub fn pin(cpu: Option<usize>) {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for c in 0..cores {
        if cpu.is_none_or(|p| p == c) {
            // SAFETY: `c` is below the number of cores, well under CPU_SETSIZE.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 means the calling thread.
    let _ = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
}

/// The CPU-time clock of a running thread.
#[derive(Debug, Clone, Copy)]
pub struct CpuClock(libc::clockid_t);

impl CpuClock {
    /// The clock of the thread behind `handle` (valid while the thread runs).
    pub fn of<T>(handle: &JoinHandle<T>) -> io::Result<CpuClock> {
        let mut id: libc::clockid_t = 0;
        // SAFETY: the pthread_t comes from a live JoinHandle; `id` is written on success.
        let rc = unsafe { libc::pthread_getcpuclockid(handle.as_pthread_t(), &mut id) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(CpuClock(id))
    }

    /// The calling thread's clock.
    pub fn this_thread() -> CpuClock {
        CpuClock(libc::CLOCK_THREAD_CPUTIME_ID)
    }

    /// CPU time the thread has used so far (user and system, the kernel's work in its
    /// system calls included).
    pub fn now(self) -> Duration {
        read(self.0).unwrap_or_default()
    }
}

fn read(clock: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// `CLOCK_REALTIME` in nanoseconds: the clock the kernel stamps received frames with.
pub fn realtime_ns() -> u64 {
    read(libc::CLOCK_REALTIME).map_or(0, |d| d.as_nanos() as u64)
}

/// Waits up to `timeout` for `fd` to become readable.
pub fn wait_readable(fd: std::os::fd::BorrowedFd<'_>, timeout: Duration) {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let _ = unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) };
}

/// CPU time process `pid` has used so far, every thread's user and system time
/// (`/proc/PID/stat`, in clock ticks).
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0)?;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

/// Whether `e` is a socket timeout: a read or write that waited its whole `SO_RCVTIMEO` or
/// `SO_SNDTIMEO` (Linux says `EAGAIN`, which std reports as `WouldBlock`; `TimedOut` too).
pub fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
