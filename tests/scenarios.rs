//! The scenarios of the collaboration guide our users come from
//! (`shared/reference/crdt-collaboration-examples.md`), as library calls.

use crdt::{BoundedCounter, Crdt, GCounter, LwwMap, LwwRegister, OrSet, PnCounter, ReplicaId, Rga};
use serde_json::json;

fn agent(n: usize) -> ReplicaId {
    ReplicaId::new(format!("agent-{n}")).unwrap()
}

/// Everyone sends its state to everyone.
fn exchange<T: Crdt>(replicas: &mut [T]) {
    let all = replicas.to_vec();
    for r in replicas.iter_mut() {
        for other in &all {
            r.merge(other);
        }
    }
}

#[test]
fn two_agents_each_count_a_request_and_both_read_two() {
    let mut counters = vec![GCounter::default(), GCounter::default()];
    counters[0].inc(&agent(1), 1).unwrap();
    counters[1].inc(&agent(2), 1).unwrap();
    exchange(&mut counters);
    assert_eq!(counters[0].value(), 2);
    assert_eq!(counters[1].value(), 2);
}

#[test]
fn three_agents_set_the_config_concurrently_and_agree_on_the_winner() {
    let mut configs = vec![LwwRegister::default(); 3];
    // Same wall-clock millisecond for two of them: the replica id breaks the tie.
    configs[0]
        .set(&agent(1), json!({"feature:ai-review": true}), 1_000)
        .unwrap();
    configs[1]
        .set(&agent(2), json!({"feature:auto-merge": false}), 1_000)
        .unwrap();
    configs[2]
        .set(&agent(3), json!({"feature:ai-review": false}), 999)
        .unwrap();
    exchange(&mut configs);
    let winner = configs[0].value().cloned();
    assert_eq!(winner, Some(json!({"feature:auto-merge": false})));
    assert!(configs.iter().all(|c| c.value().cloned() == winner));
    assert_eq!(configs[0], configs[2]);
    // What lost is kept for debugging: the other write of the same millisecond.
    assert_eq!(configs[1].lost().unwrap().writer, agent(1));

    // A write made after seeing the others wins, even with a clock far behind.
    configs[2]
        .set(&agent(3), json!({"feature:ai-review": "final"}), 1)
        .unwrap();
    exchange(&mut configs);
    assert!(
        configs
            .iter()
            .all(|c| c.value() == Some(&json!({"feature:ai-review": "final"})))
    );
}

/// The guide's feature flags, as a map: the whole config in one register
/// loses one of two concurrent changes of different flags; a map keeps both,
/// and settles one flag written by two agents the same way everywhere.
#[test]
fn feature_flags_changed_concurrently_by_three_agents_all_survive() {
    let mut flags = vec![LwwMap::default(); 3];
    flags[0]
        .put(&agent(1), "feature:ai-review", json!(false), 1_000)
        .unwrap();
    exchange(&mut flags);
    // Concurrently: agent-1 turns ai-review on, agent-2 adds auto-merge,
    // agent-3 turns ai-review off a millisecond later.
    flags[0]
        .put(&agent(1), "feature:ai-review", json!(true), 2_000)
        .unwrap();
    flags[1]
        .put(&agent(2), "feature:auto-merge", json!(true), 2_000)
        .unwrap();
    flags[2]
        .put(&agent(3), "feature:ai-review", json!(false), 2_001)
        .unwrap();
    exchange(&mut flags);
    let want = json!({"feature:ai-review": false, "feature:auto-merge": true});
    assert!(flags.iter().all(|f| f.value_json() == want));
    assert_eq!(flags[0], flags[2]);
    // The same story with the whole config in one register loses a flag.
    let mut configs = vec![LwwRegister::default(); 2];
    configs[0]
        .set(&agent(1), json!({"feature:ai-review": true}), 2_000)
        .unwrap();
    configs[1]
        .set(&agent(2), json!({"feature:auto-merge": true}), 2_000)
        .unwrap();
    exchange(&mut configs);
    assert_eq!(
        configs[0].value(),
        Some(&json!({"feature:auto-merge": true}))
    );
    // Retiring a flag while another agent changes it keeps the change.
    flags[0].unset(&agent(1), "feature:auto-merge").unwrap();
    flags[1]
        .put(&agent(2), "feature:auto-merge", json!(false), 3_000)
        .unwrap();
    exchange(&mut flags);
    assert!(
        flags
            .iter()
            .all(|f| f.get("feature:auto-merge") == Some(&json!(false)))
    );
    // Retiring it after seeing every write removes it everywhere.
    flags[2].unset(&agent(3), "feature:auto-merge").unwrap();
    exchange(&mut flags);
    assert!(flags.iter().all(|f| f.get("feature:auto-merge").is_none()));
}

/// The guide's cleanup: a coordinator deletes the finished work (a task
/// list and its counter) while a worker, not having seen the delete, still
/// reports one task. The report survives the cleanup; everything the
/// coordinator saw is gone, on every agent, in any order of delivery.
#[test]
fn cleanup_deletes_what_the_coordinator_saw_and_keeps_a_late_report() {
    let mut tasks = vec![OrSet::default(); 3];
    let mut done = vec![GCounter::default(); 3];
    for (i, t) in ["task-1", "task-2"].into_iter().enumerate() {
        tasks[i].add(&agent(i + 1), json!(t)).unwrap();
        done[i].inc(&agent(i + 1), 1).unwrap();
    }
    exchange(&mut tasks);
    exchange(&mut done);
    // agent-1 cleans up; agent-3 reports concurrently.
    tasks[0].delete_object(&agent(1), 5_000).unwrap();
    done[0].delete_object(&agent(1), 5_000).unwrap();
    tasks[2].add(&agent(3), json!("task-3")).unwrap();
    done[2].inc(&agent(3), 1).unwrap();
    for order in [[0, 1, 2], [2, 1, 0]] {
        let (mut t, mut d) = (OrSet::default(), GCounter::default());
        for i in order {
            t.merge(&tasks[i]);
            d.merge(&done[i]);
        }
        assert_eq!(t.value_json(), json!(["task-3"]));
        assert_eq!(d.value(), 1);
        assert!(
            !crdt::Object::OrSet(t.clone()).is_deleted(),
            "the report brought it back"
        );
    }
    // Without the late report, the cleanup leaves nothing.
    let mut t = tasks[0].clone();
    t.merge(&tasks[1]);
    assert!(crdt::Object::OrSet(t).is_deleted());
}

#[test]
fn a_task_removed_while_another_agent_re_adds_it_stays() {
    let mut queues = vec![OrSet::default(); 2];
    let task = json!({"id": "task-1", "data": {"type": "analyze"}});
    queues[0].add(&agent(0), task.clone()).unwrap();
    exchange(&mut queues);
    queues[0].remove(&agent(0), &task).unwrap(); // agent 0 completes it
    queues[1].add(&agent(1), task.clone()).unwrap(); // agent 1 re-adds it, concurrently
    exchange(&mut queues);
    assert!(
        queues.iter().all(|q| q.contains(&task)),
        "add wins over a concurrent remove"
    );

    // A remove that has seen every add does remove it.
    queues[1].remove(&agent(1), &task).unwrap();
    exchange(&mut queues);
    assert!(queues.iter().all(|q| !q.contains(&task)));
}

/// The guide's "allocate 30 GPUs of 100", with the limit kept: with a
/// pn-counter two concurrent allocations of 25 from the 70 left give 120;
/// with a bounded counter each agent allocates only rights it holds.
#[test]
fn gpu_allocation_never_passes_the_limit() {
    let mut gpus = vec![BoundedCounter::default(); 3];
    gpus[0].create(&agent(1), 100).unwrap();
    gpus[0].allocate(&agent(1), 30).unwrap();
    gpus[0].transfer(&agent(1), &agent(2), 35).unwrap();
    exchange(&mut gpus);
    gpus[0].allocate(&agent(1), 25).unwrap();
    gpus[1].allocate(&agent(2), 25).unwrap();
    // agent-3 holds no rights: refused, and told who holds them.
    let err = gpus[2].allocate(&agent(3), 25).unwrap_err().to_string();
    assert!(err.contains("agent-1 holds 35, agent-2 holds 35"), "{err}");
    assert!(gpus[0].allocate(&agent(1), 25).is_err());
    exchange(&mut gpus);
    assert!(gpus.iter().all(|g| g.value() == 80 && g.limit() == 100));
    // The same with a pn-counter overshoots.
    let mut plain = vec![PnCounter::default(); 2];
    plain[0].inc(&agent(1), 30).unwrap();
    exchange(&mut plain);
    plain[0].inc(&agent(1), 25).unwrap();
    plain[1].inc(&agent(2), 25).unwrap();
    plain[0].inc(&agent(1), 25).unwrap();
    plain[1].inc(&agent(2), 25).unwrap();
    exchange(&mut plain);
    assert_eq!(plain[0].value(), 130);
}

#[test]
fn gpu_allocations_and_releases_balance_out() {
    let mut gpus = vec![PnCounter::default(); 2];
    gpus[0].inc(&agent(1), 30).unwrap(); // allocate 30
    gpus[1].inc(&agent(2), 40).unwrap(); // allocate 40
    exchange(&mut gpus);
    gpus[0].dec(&agent(1), 30).unwrap(); // release 30
    exchange(&mut gpus);
    let max = 100;
    assert_eq!(gpus[0].value(), 40);
    assert_eq!(max - gpus[1].value(), 60, "available");
}

#[test]
fn three_agents_type_into_one_document_and_read_the_same_text() {
    let mut docs = vec![Rga::default(); 3];
    docs[0].insert(&agent(1), 0, "Hello ").unwrap();
    docs[1].insert(&agent(2), 0, "World").unwrap();
    docs[2].insert(&agent(3), 0, ", ").unwrap();
    exchange(&mut docs);
    let text = docs[0].text();
    assert!(docs.iter().all(|d| d.text() == text));
    for run in ["Hello ", "World", ", "] {
        assert!(text.contains(run), "{run:?} was split: {text:?}");
    }
    assert_eq!(text.chars().count(), 13);
}
