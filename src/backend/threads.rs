//! The serial and thread backends: library-owned threads sharing one loaded module. Wasm
//! runs only on these threads, so the evaluator is usable from blocking and async code alike.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::backend::{Backend, Finished, Shared, Task};
use crate::job::JobStatus;
use crate::sandbox::JobInput;

/// A pool of threads that run tasks in submit order.
pub struct ThreadPool {
    tasks: Option<Sender<Task>>,
    threads: Vec<JoinHandle<()>>,
}

impl ThreadPool {
    /// Starts `threads` worker threads that report on `done`.
    pub fn start(
        threads: usize,
        shared: Shared,
        done: Sender<Finished>,
    ) -> std::io::Result<ThreadPool> {
        let (tasks, rx) = crossbeam_channel::unbounded::<Task>();
        let shared = Arc::new(shared);
        let threads = (0..threads.max(1))
            .map(|i| {
                let (rx, done, shared) = (rx.clone(), done.clone(), shared.clone());
                std::thread::Builder::new()
                    .name(format!("wasmeval-worker-{i}"))
                    .spawn(move || work(&rx, &done, &shared))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(ThreadPool {
            tasks: Some(tasks),
            threads,
        })
    }
}

impl Backend for ThreadPool {
    fn dispatch(&self, task: Task) {
        if let Some(tx) = &self.tasks {
            // The workers live as long as the sender: this cannot fail.
            let _ = tx.send(task);
        }
    }
}

fn work(tasks: &Receiver<Task>, done: &Sender<Finished>, shared: &Shared) {
    for task in tasks {
        // A storage that fails here only loses the RUNNING mark; the outcome is stored at gather.
        let _ = shared
            .recorder
            .storage
            .store_job_status(&task.id, JobStatus::Running);
        let output = shared.module.run(
            &shared.policy,
            JobInput {
                id: task.id.to_string(),
                config: task.config,
                kwargs: shared.kwargs.clone(),
                control: task.control,
                observer: None,
            },
        );
        if done
            .send(shared.recorder.complete(task.id, output))
            .is_err()
        {
            return;
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.tasks.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
