//! Admission control: a job waits for room in its engine's pooling allocator instead of
//! failing when too many instances run at once in one process.
//!
//! Each engine's pool holds a fixed number of component instances, core instances, memories
//! and tables. A module's [`Shape`] says how many of each one job takes; a job is admitted
//! when all of them fit, and gives them back when its store is dropped.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// What one instance of a module takes from the pool (or, for a pool, what it holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// Component instances (1 for a component, 0 for a core module).
    pub component_instances: u32,
    /// Core instances.
    pub core_instances: u32,
    /// Linear memories.
    pub memories: u32,
    /// Tables.
    pub tables: u32,
}

impl Shape {
    fn fits_in(&self, used: &Shape, capacity: &Shape) -> bool {
        used.component_instances + self.component_instances <= capacity.component_instances
            && used.core_instances + self.core_instances <= capacity.core_instances
            && used.memories + self.memories <= capacity.memories
            && used.tables + self.tables <= capacity.tables
    }

    fn add(&mut self, other: &Shape, sign: i64) {
        let f = |a: &mut u32, b: u32| *a = (*a as i64 + sign * b as i64) as u32;
        f(&mut self.component_instances, other.component_instances);
        f(&mut self.core_instances, other.core_instances);
        f(&mut self.memories, other.memories);
        f(&mut self.tables, other.tables);
    }

    /// Whether one instance fits in an empty pool of `capacity`.
    pub fn fits_in_empty(&self, capacity: &Shape) -> bool {
        self.fits_in(&Shape::default(), capacity)
    }
}

/// The slots of one engine's pool in use in this process.
#[derive(Debug)]
pub struct Admission {
    capacity: Shape,
    used: Mutex<Shape>,
    freed: Condvar,
}

/// Room taken in the pool, given back when dropped.
#[derive(Debug)]
pub struct Slot<'a> {
    admission: &'a Admission,
    shape: Shape,
}

impl Admission {
    /// A pool of `capacity`.
    pub fn new(capacity: Shape) -> Admission {
        Admission {
            capacity,
            used: Mutex::new(Shape::default()),
            freed: Condvar::new(),
        }
    }

    /// What the pool holds.
    pub fn capacity(&self) -> Shape {
        self.capacity
    }

    /// Waits until `shape` fits, then takes it. Every few milliseconds `stop` is asked
    /// whether the job should give up waiting (cancelled, or past its deadline); its reason
    /// is returned then.
    pub fn admit<R>(
        &self,
        shape: Shape,
        mut stop: impl FnMut() -> Option<R>,
    ) -> Result<Slot<'_>, R> {
        let mut used = self.used.lock().unwrap();
        while !shape.fits_in(&used, &self.capacity) {
            if let Some(why) = stop() {
                return Err(why);
            }
            used = self
                .freed
                .wait_timeout(used, Duration::from_millis(5))
                .unwrap()
                .0;
        }
        used.add(&shape, 1);
        Ok(Slot {
            admission: self,
            shape,
        })
    }

    /// Slots in use now.
    pub fn in_use(&self) -> Shape {
        *self.used.lock().unwrap()
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.admission.used.lock().unwrap().add(&self.shape, -1);
        self.admission.freed.notify_all();
    }
}

/// The number of core instances a binary creates: 1 for a core module; for a component, every
/// core module it instantiates, nested components included (an upper bound). Instances made
/// of other instances' exports take no pool slot and are not counted.
pub fn core_instances(wasm: &[u8], component: bool) -> u32 {
    if !component {
        return 1;
    }
    let mut n = 0;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let Ok(wasmparser::Payload::InstanceSection(s)) = payload {
            n += s
                .into_iter()
                .filter(|i| matches!(i, Ok(wasmparser::Instance::Instantiate { .. })))
                .count() as u32;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_wait_for_room_and_give_up_when_stopped() {
        let pool = Admission::new(Shape {
            component_instances: 2,
            core_instances: 8,
            memories: 4,
            tables: 8,
        });
        let job = Shape {
            component_instances: 1,
            core_instances: 3,
            memories: 2,
            tables: 1,
        };
        let a = pool.admit(job, || None::<()>).unwrap();
        let b = pool.admit(job, || None::<()>).unwrap();
        assert_eq!(pool.in_use().memories, 4);
        let mut asked = 0;
        let c = pool.admit(job, || {
            asked += 1;
            (asked == 3).then(|| "cancelled".to_string())
        });
        assert_eq!(c.unwrap_err(), "cancelled");
        drop(a);
        let waiter = std::thread::scope(|s| {
            let t = s.spawn(|| pool.admit(job, || None::<()>).map(|_| ()));
            std::thread::sleep(Duration::from_millis(20));
            drop(b);
            t.join().unwrap()
        });
        assert!(waiter.is_ok());
        assert_eq!(pool.in_use(), Shape::default());
        let huge = Shape { memories: 5, ..job };
        assert!(!huge.fits_in_empty(&pool.capacity()));
        assert!(job.fits_in_empty(&pool.capacity()));
    }
}
