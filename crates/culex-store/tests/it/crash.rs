//! kill -9 at random moments: every record reported durable survives, and
//! the store always holds an exact prefix of the writes (so QoS 2 state is
//! never half-applied and nothing is applied twice).

use std::collections::{BTreeSet, VecDeque};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use culex_store::{Durability, DurableStore, Recovered};
use rand::Rng;

use crate::temp_store;

const ROUNDS: u64 = 4;

/// The highest step the writer of `round` acknowledged, from its stdout.
fn run_and_kill(path: &std::path::Path, round: u64, kill_after: Duration) -> Option<u64> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_culex-store-crash-writer"))
        .arg(path)
        .arg(round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn crash writer");
    let stdout = child.stdout.take().expect("stdout");
    let acked = Arc::new(Mutex::new(None::<u64>));
    let reader = {
        let acked = acked.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut words = line.split(' ');
                if let (Some("ok"), Some(r), Some(i)) = (words.next(), words.next(), words.next()) {
                    assert_eq!(r, round.to_string());
                    let i: u64 = i.parse().expect("step");
                    let mut a = acked.lock().unwrap();
                    *a = Some(a.map_or(i, |a: u64| a.max(i)));
                }
            }
        })
    };
    // Kill only once something was acknowledged, then at a random moment.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().is_none() && Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(kill_after);
    child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix.
    child.wait().expect("reap");
    reader.join().expect("reader");
    let a = *acked.lock().unwrap();
    a
}

/// The highest step of `round` whose marker is in the store: the retained
/// messages of a round are `r/ROUND/0..=K`, every step's last op.
fn committed_prefix(r: &Recovered, round: u64) -> Option<u64> {
    let prefix = format!("r/{round}/");
    let steps: Vec<u64> = r
        .retained
        .iter()
        .filter_map(|m| m.topic.strip_prefix(&prefix))
        .map(|i| i.parse().unwrap())
        .collect();
    let max = steps.iter().copied().max()?;
    assert_eq!(
        steps.len() as u64,
        max + 1,
        "round {round}: retained 0..={max} all present"
    );
    Some(max)
}

/// The session of `round` as the writer builds it: its queue and pending
/// inbound QoS 2 ids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Model {
    queue: VecDeque<String>,
    pending: BTreeSet<u16>,
}

impl Model {
    /// Applies step `i` but its marker, pushing the state after each op.
    fn step(&mut self, round: u64, i: u64, states: &mut Vec<Model>) {
        self.queue.push_back(format!("{round}:{i}"));
        states.push(self.clone());
        let pid = u16::try_from(i % 100).unwrap() + 1;
        if (i / 100).is_multiple_of(2) {
            self.pending.insert(pid);
        } else {
            self.pending.remove(&pid);
        }
        states.push(self.clone());
        if i % 3 == 2 {
            self.queue.pop_front();
            states.push(self.clone());
        }
    }
}

/// Checks that the session of `round` holds exactly the ops up to the marker
/// of step `k`, plus possibly some leading ops of step `k + 1`: a commit may
/// end inside a step, but never inside an op, and never skips or repeats one.
fn check_session(r: &Recovered, round: u64, k: u64) {
    let client = format!("c{round}");
    let s = r
        .sessions
        .iter()
        .find(|s| s.client_id == client)
        .unwrap_or_else(|| panic!("session {client} restored"));
    assert!(s.has_record);
    let got = Model {
        queue: s
            .queued
            .iter()
            .map(|q| String::from_utf8_lossy(&q.message.payload).into_owned())
            .collect(),
        pending: s.inbound_qos2.iter().copied().collect(),
    };
    assert_eq!(s.inbound_qos2.len(), got.pending.len(), "no id twice");
    let mut model = Model::default();
    let mut scratch = Vec::new();
    for i in 0..=k {
        model.step(round, i, &mut scratch);
    }
    let mut allowed = vec![model.clone()];
    model.step(round, k + 1, &mut allowed);
    assert!(
        allowed.contains(&got),
        "round {round}: state is no prefix of the writes after step {k}: queue {:?}..{:?}, pending {:?}",
        got.queue.front(),
        got.queue.back(),
        got.pending
    );
}

#[test]
fn acknowledged_records_survive_kill_minus_nine() {
    let (_dir, path) = temp_store();
    let mut rng = rand::thread_rng();
    let mut prefixes = Vec::new();
    for round in 0..ROUNDS {
        let kill_after = Duration::from_millis(rng.gen_range(0..400));
        let acked = run_and_kill(&path, round, kill_after)
            .unwrap_or_else(|| panic!("round {round}: the writer acknowledged nothing"));
        let (store, r) = DurableStore::open(&path, Durability::Sync).unwrap();
        assert!(r.warnings.is_empty(), "round {round}: {:?}", r.warnings);
        let k = committed_prefix(&r, round).expect("some steps committed");
        assert!(
            k >= acked,
            "round {round}: step {acked} was acknowledged but only {k} is stored"
        );
        check_session(&r, round, k);
        prefixes.push(k);
        // Earlier rounds are untouched.
        for (earlier, &k_earlier) in prefixes.iter().enumerate() {
            let earlier = earlier as u64;
            assert_eq!(committed_prefix(&r, earlier), Some(k_earlier));
            check_session(&r, earlier, k_earlier);
        }
        store.close().unwrap();
    }
}
