//! CPU time spent, for the benches' figures per operation (steadier than rates on a shared
//! machine): the whole process's, or the calling thread's.

use std::time::Duration;

/// The process's CPU time so far: all its threads, user and system (zero where not measured).
pub fn process() -> Duration {
    spent(Clock::Process)
}

/// The calling thread's CPU time so far, user and system (zero where not measured).
pub fn thread() -> Duration {
    spent(Clock::Thread)
}

enum Clock {
    Process,
    Thread,
}

#[cfg(unix)]
fn spent(clock: Clock) -> Duration {
    let id = match clock {
        Clock::Process => rustix::time::ClockId::ProcessCPUTime,
        Clock::Thread => rustix::time::ClockId::ThreadCPUTime,
    };
    let spent = rustix::time::clock_gettime(id);
    Duration::new(u64::try_from(spent.tv_sec).unwrap_or(0), u32::try_from(spent.tv_nsec).unwrap_or(0))
}

#[cfg(not(unix))]
fn spent(_: Clock) -> Duration {
    Duration::ZERO
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_works_spends_its_own_and_the_process_time() {
        let (process_before, thread_before) = (process(), thread());
        let mut x = 1u64;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let (process_spent, thread_spent) = (process() - process_before, thread() - thread_before);
        if cfg!(unix) {
            // Busy for 30 ms of wall time: most of it on a core (a loaded machine may take some).
            assert!(thread_spent >= Duration::from_millis(10), "{thread_spent:?}");
            assert!(process_spent >= thread_spent, "{process_spent:?} < {thread_spent:?}");
        }
    }
}
