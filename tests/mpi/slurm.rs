//! A one-node Slurm for the tests: munged (its own socket), slurmctld and slurmd, started in
//! a temporary directory with a `slurm.conf` written here (this machine's real CPU count,
//! `MpiDefault=pmix`), and stopped by pid when dropped. Needs root and Debian's `slurmd`,
//! `slurmctld`, `slurm-client` and `munge`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The daemons, and the directory holding their configuration, state and logs.
pub struct Slurm {
    dir: tempfile::TempDir,
    daemons: Vec<Child>,
}

/// The ports of the test's slurmctld and slurmd (not Slurm's defaults).
const PORTS: (u16, u16) = (6917, 6918);

impl Slurm {
    /// Starts the daemons and waits until the node takes jobs; `None` (with the logs
    /// printed) if it does not within 30 s.
    pub fn start() -> Option<Slurm> {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let munge = d.join("munge");
        for sub in ["state", "spool", "munge"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        // munged runs as its user, and its socket's directories must be searchable by all.
        let chmod = |path: &Path, mode: &str| {
            Command::new("chmod").arg(mode).arg(path).status().unwrap();
        };
        chmod(d, "755");
        chmod(&munge, "755");
        Command::new("chown")
            .args(["munge:"])
            .arg(&munge)
            .status()
            .unwrap();
        let socket = munge.join("sock");
        let mut slurm = Slurm {
            daemons: Vec::new(),
            dir,
        };
        let d = slurm.dir.path().to_path_buf();
        slurm.spawn(
            Command::new("runuser")
                .args(["-u", "munge", "--", "/usr/sbin/munged", "-F"])
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--pid-file={}", munge.join("pid").display()))
                .arg(format!("--log-file={}", munge.join("log").display()))
                .arg(format!("--seed-file={}", munge.join("seed").display())),
        );
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let conf = format!(
            "ClusterName=wasmeval\nSlurmctldHost=vm(127.0.0.1)\nSlurmUser=root\n\
             SlurmdUser=root\nAuthType=auth/munge\nCredType=cred/munge\n\
             AuthInfo=socket={socket}\nStateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldPort={ctld}\nSlurmdPort={slurmd}\nProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\nSchedulerType=sched/backfill\n\
             SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\nMpiDefault=pmix\n\
             ReturnToService=2\nSlurmctldLogFile={d}/slurmctld.log\n\
             SlurmdLogFile={d}/slurmd.log\n\
             NodeName=vm NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN\n\
             PartitionName=debug Nodes=vm Default=YES MaxTime=INFINITE State=UP \
             OverSubscribe=FORCE:4\n",
            socket = socket.display(),
            d = d.display(),
            ctld = PORTS.0,
            slurmd = PORTS.1,
        );
        let conf_path = d.join("slurm.conf");
        std::fs::write(&conf_path, conf).unwrap();
        if !wait_for(|| socket.exists()) {
            slurm.print_logs();
            return None;
        }
        slurm.spawn(
            Command::new("slurmctld")
                .arg("-D")
                .arg("-f")
                .arg(&conf_path),
        );
        slurm.spawn(
            Command::new("slurmd")
                .args(["-D", "-N", "vm", "-f"])
                .arg(&conf_path),
        );
        let idle = wait_for(|| {
            let out = slurm
                .client("sinfo")
                .args(["-h", "-o", "%t"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim() == "idle"
        });
        if !idle {
            slurm.print_logs();
            return None;
        }
        Some(slurm)
    }

    fn spawn(&mut self, command: &mut Command) {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the Slurm and munge daemons are installed");
        self.daemons.push(child);
    }

    /// A Slurm client command (`sinfo`, `srun`) for this cluster.
    fn client(&self, name: &str) -> Command {
        let mut c = Command::new(name);
        c.env("SLURM_CONF", self.dir.path().join("slurm.conf"));
        c
    }

    /// `srun -n ranks --overcommit --mpi=pmix`, with Open MPI told to yield when idle (srun
    /// does not tell it that the node is oversubscribed).
    pub fn srun(&self, ranks: usize) -> Command {
        let mut c = self.client("srun");
        c.args(["-n", &ranks.to_string(), "--overcommit", "--mpi=pmix"])
            .env("OMPI_MCA_mpi_yield_when_idle", "1");
        c
    }

    fn print_logs(&self) {
        for log in ["munge/log", "slurmctld.log", "slurmd.log"] {
            let text = std::fs::read_to_string(self.dir.path().join(log)).unwrap_or_default();
            eprintln!("== {log}\n{text}");
        }
    }
}

fn wait_for(mut ready: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

impl Drop for Slurm {
    fn drop(&mut self) {
        // slurmd first (it talks to slurmctld), munged last (both talk to it).
        for daemon in self.daemons.iter_mut().rev() {
            let _ = Command::new("kill").arg(daemon.id().to_string()).status();
            let _ = daemon.wait();
        }
    }
}
