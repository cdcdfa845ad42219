//! `poll_oneoff` on clocks only (what `sleep` and `nanosleep` call), waited for
//! asynchronously.
//!
//! The sandbox lets WASI file calls block the app's thread (a local disk access each: far
//! cheaper than a round trip through tokio's blocking pool per call), which would also make a
//! sleep block it, out of reach of the run's timeout. So a poll on clocks alone is answered
//! here: the shortest wait, measured against the frozen clock, is slept with tokio's timer
//! (the timeout can stop it), then every subscription due by then is reported. Any other poll
//! (file descriptors) goes to wasmtime-wasi, where files are always ready.

use std::time::Duration;

use wasmtime::{Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;

use super::Sandbox;

/// The size of a WASI preview-1 `subscription`.
const SUBSCRIPTION_LEN: usize = 48;
/// The size of a WASI preview-1 `event`.
const EVENT_LEN: usize = 32;
/// `eventtype::clock`.
const EVENTTYPE_CLOCK: u8 = 0;
/// `subclockflags::subscription_clock_abstime`.
const ABSTIME: u16 = 1;
/// `errno::fault`, `errno::inval`.
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;

pub(super) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        "wasi_snapshot_preview1",
        "poll_oneoff",
        |mut caller: Caller<'_, Sandbox>, (input, output, count, nevents): (i32, i32, i32, i32)| {
            Box::new(async move {
                let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
                    return Err(wasmtime::Error::msg("missing required memory export"));
                };
                let now = caller.data().clock_ns;
                let Some(waits) = clock_waits(memory.data(&caller), input, count, now) else {
                    let (mut guest, sandbox) = super::quota::split(&mut caller)?;
                    return p1::poll_oneoff(
                        &mut sandbox.wasi,
                        &mut guest,
                        input,
                        output,
                        count,
                        nevents,
                    )
                    .await;
                };
                let Ok(waits) = waits else { return Ok(ERRNO_FAULT) };
                let Some(shortest) = waits.iter().map(|(_, wait)| *wait).min() else {
                    return Ok(ERRNO_INVAL);
                };
                tokio::time::sleep(Duration::from_nanos(shortest)).await;
                let data = memory.data_mut(&mut caller);
                let fired: Vec<u64> = waits
                    .iter()
                    .filter(|(_, wait)| *wait == shortest)
                    .map(|(userdata, _)| *userdata)
                    .collect();
                let (Ok(output), Ok(nevents)) = (usize::try_from(output), usize::try_from(nevents))
                else {
                    return Ok(ERRNO_FAULT);
                };
                let end = output.checked_add(fired.len() * EVENT_LEN);
                if end.is_none_or(|end| end > data.len()) || nevents + 4 > data.len() {
                    return Ok(ERRNO_FAULT);
                }
                for (i, userdata) in fired.iter().enumerate() {
                    let event = &mut data[output + i * EVENT_LEN..output + (i + 1) * EVENT_LEN];
                    event.fill(0);
                    event[..8].copy_from_slice(&userdata.to_le_bytes());
                    event[10] = EVENTTYPE_CLOCK;
                }
                let count = u32::try_from(fired.len()).unwrap_or(u32::MAX);
                data[nevents..nevents + 4].copy_from_slice(&count.to_le_bytes());
                Ok(0)
            })
        },
    )?;
    Ok(())
}

/// For a poll whose subscriptions are all on clocks: each one's userdata and wait in
/// nanoseconds from the frozen clock `now` (`Err` if they lie outside memory). `None` when
/// some subscription is not on a clock, or there is none.
fn clock_waits(
    memory: &[u8],
    input: i32,
    count: i32,
    now: u64,
) -> Option<Result<Vec<(u64, u64)>, ()>> {
    let (Ok(input), Ok(count)) = (usize::try_from(input), usize::try_from(count)) else {
        return Some(Err(()));
    };
    if count == 0 {
        return None;
    }
    let Some(end) = count.checked_mul(SUBSCRIPTION_LEN).and_then(|len| input.checked_add(len))
    else {
        return Some(Err(()));
    };
    let Some(subscriptions) = memory.get(input..end) else { return Some(Err(())) };
    let mut waits = Vec::with_capacity(count);
    for subscription in subscriptions.chunks_exact(SUBSCRIPTION_LEN) {
        if subscription[8] != EVENTTYPE_CLOCK {
            return None;
        }
        let word =
            |at: usize| u64::from_le_bytes(subscription[at..at + 8].try_into().unwrap_or_default());
        let userdata = word(0);
        let timeout = word(24);
        let flags = u16::from_le_bytes([subscription[40], subscription[41]]);
        let wait = if flags & ABSTIME != 0 { timeout.saturating_sub(now) } else { timeout };
        waits.push((userdata, wait));
    }
    Some(Ok(waits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(userdata: u64, tag: u8, timeout: u64, flags: u16) -> [u8; SUBSCRIPTION_LEN] {
        let mut bytes = [0u8; SUBSCRIPTION_LEN];
        bytes[..8].copy_from_slice(&userdata.to_le_bytes());
        bytes[8] = tag;
        bytes[24..32].copy_from_slice(&timeout.to_le_bytes());
        bytes[40..42].copy_from_slice(&flags.to_le_bytes());
        bytes
    }

    #[test]
    fn clock_subscriptions_are_read_and_others_are_left_to_wasi() {
        let mut memory = vec![0u8; 8];
        memory.extend(subscription(7, EVENTTYPE_CLOCK, 1_000, 0));
        memory.extend(subscription(8, EVENTTYPE_CLOCK, 5_000, ABSTIME));
        let waits = clock_waits(&memory, 8, 2, 4_500).unwrap().unwrap();
        assert_eq!(waits, [(7, 1_000), (8, 500)]);
        memory.extend(subscription(9, 1, 0, 0));
        assert!(clock_waits(&memory, 8, 3, 0).is_none(), "an fd subscription goes to WASI");
        assert!(clock_waits(&memory, 8, 0, 0).is_none());
        assert_eq!(clock_waits(&memory, 8, 4, 0), Some(Err(())), "past the end of memory");
        assert_eq!(clock_waits(&memory, -1, 1, 0), Some(Err(())));
    }
}
