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
        if !cfg!(unix) {
            return;
        }
        let (process_before, thread_before) = (process(), thread());
        // Busy until the thread's clock shows 20 ms spent (however long a loaded machine takes).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut x = 1u64;
        while thread() - thread_before < Duration::from_millis(20) {
            assert!(std::time::Instant::now() < deadline, "the thread's CPU time does not grow");
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let (process_spent, thread_spent) = (process() - process_before, thread() - thread_before);
        assert!(process_spent >= thread_spent, "{process_spent:?} < {thread_spent:?}");
    }
}
