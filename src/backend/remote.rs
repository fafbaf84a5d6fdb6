//! A backend run by one thread of its own (the mpi and redis methods): the evaluator's
//! requests reach it on a channel, and dropping the backend closes the channel and waits for
//! the thread.

use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use crate::backend::{Backend, Task};
use crate::job::JobId;

/// What the evaluator asks of the thread.
pub enum Control {
    /// Run a job.
    Task(Task),
    /// Stop a job.
    Cancel(JobId),
    /// The evaluator's new deadline.
    Deadline(Option<Instant>),
    /// The evaluator is closing (or not any more).
    Closing(bool),
}

/// The thread and its channel.
pub struct Remote {
    tx: Option<Sender<Control>>,
    thread: Option<JoinHandle<()>>,
}

impl Remote {
    /// Starts thread `name` running `serve` on the channel's receiving end.
    pub fn spawn(
        name: &str,
        serve: impl FnOnce(Receiver<Control>) + Send + 'static,
    ) -> std::io::Result<Remote> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || serve(rx))?;
        Ok(Remote {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    fn send(&self, control: Control) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(control);
        }
    }
}

impl Backend for Remote {
    fn dispatch(&self, task: Task) {
        self.send(Control::Task(task));
    }

    fn cancel(&self, id: &JobId) {
        self.send(Control::Cancel(id.clone()));
    }

    fn set_deadline(&self, deadline: Option<Instant>) {
        self.send(Control::Deadline(deadline));
    }

    fn set_closing(&self, closing: bool) {
        self.send(Control::Closing(closing));
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
