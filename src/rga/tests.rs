//! The text's index, checked after many edits.

use super::*;

fn id(s: &str) -> ReplicaId {
    ReplicaId::new(s).unwrap()
}

/// Internal consistency (see [`Rga::dbg_check`]).
fn check(rga: &Rga) {
    rga.dbg_check().unwrap();
}

#[test]
fn backspacing_stays_one_span() {
    let me = id("a");
    let mut t = Rga::default();
    t.insert(&me, 0, "hello world").unwrap();
    for p in (5..11).rev() {
        t.delete(&me, p, 1).unwrap();
    }
    assert_eq!(t.text(), "hello");
    assert_eq!(t.spans().count(), 2, "{:?}", t.spans().collect::<Vec<_>>());
    check(&t);
    let back = Rga::decode(&At::root(&t.encode())).unwrap();
    assert_eq!(back, t);
}

#[test]
fn many_edits_keep_the_index_consistent() {
    let me = id("a");
    let mut t = Rga::default();
    let mut model: Vec<char> = Vec::new();
    let mut x: u64 = 7;
    for i in 0..3000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = model.len();
        if len > 0 && (x >> 60) < 5 {
            let p = (x >> 20) as usize % len;
            let n = ((x >> 8) as usize % 3 + 1).min(len - p);
            t.delete(&me, p, n).unwrap();
            model.drain(p..p + n);
        } else {
            let p = if i % 7 == 0 {
                (x >> 20) as usize % (len + 1)
            } else {
                len.min((x >> 30) as usize % (len + 1))
            };
            let ch = char::from(b'a' + (i % 26) as u8);
            t.insert(&me, p, &ch.to_string()).unwrap();
            model.insert(p, ch);
        }
        if i % 97 == 0 {
            check(&t);
        }
    }
    check(&t);
    assert_eq!(t.text(), model.iter().collect::<String>());
    assert!(t.chunks.len() > 1, "the test should exercise chunk splits");
}
