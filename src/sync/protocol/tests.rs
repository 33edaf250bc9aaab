//! The protocol without sockets: messages in, effects out.

mod test {
    use super::super::*;

    fn id(s: &str) -> ReplicaId {
        ReplicaId::new(s).unwrap()
    }

    /// A push's objects written back as sent (the server's log line) decode
    /// to the same delta; a state spread over lines is not written as sent.
    #[test]
    fn objects_as_sent_decode_to_the_same_delta() {
        let text = r#"[
            {"name": "n", "type": "g-counter", "state": {"counts": {"a": {"seq": 2, "count": 5}}}},
            {"type": "lww-register", "name": "caf\u00e9:\"x\"", "state": {"context": {"a": 1}, "writes": [{"dot": ["a", 1], "ts": [7, 0], "value": "é \" \\", "lost": null}]}},
            {"name": "s", "type": "or-set", "state": {"context": {"a": 1}, "elements": [{"value": [1, {"k": null}], "dots": [["a", 1]]}]}}
        ]"#;
        let list: Vec<ObjectIn<'_>> = serde_json::from_str(text).unwrap();
        let want = decode_objects_in(&list, &id("p")).unwrap();
        assert_eq!(want, decode_objects_text(text, &id("p")).unwrap());
        let mut line = String::from("x");
        push_objects_in(&mut line, &list).unwrap();
        assert!(!line.contains('\n'), "{line}");
        let back: Value = serde_json::from_str(&line[1..]).unwrap();
        assert_eq!(decode_objects(Some(&back), &id("p")).unwrap(), want);
        let spread = r#"[{"name": "n", "type": "g-counter", "state": {"counts":
            {"a": {"seq": 1, "count": 1}}}}]"#;
        let list: Vec<ObjectIn<'_>> = serde_json::from_str(spread).unwrap();
        let mut line = String::from("x");
        assert!(push_objects_in(&mut line, &list).is_none());
        assert_eq!(line, "x");
    }

    fn replies(effects: &[Effect]) -> Vec<Value> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Reply(v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    /// Runs a whole client sync against a server store, without sockets.
    fn sync(server: &mut Store, client: &mut Store, select: &[String]) {
        sync_in_memory(server, client, select, DEFAULT_MAX_MESSAGE_BYTES).unwrap();
    }

    /// Decoding from text takes a typed shortcut: it must agree with the
    /// value path on every input, errors included.
    #[test]
    fn objects_decode_the_same_from_text_and_from_values() {
        let from = id("a");
        let cases = [
            r#"[{"name": "n", "type": "g-counter", "state": {"counts": {"a": {"seq": 1, "count": 2}}}},
                {"name": "s", "type": "or-set", "state": {"context": {"a": 1}, "elements": [{"value": "x", "dots": [["a", 1]]}]}, "extra": 1}]"#,
            r#"[{"name": 7, "type": "g-counter", "state": {}}]"#,
            r#"[{"name": "n", "type": "nope", "state": {}}]"#,
            r#"[{"name": "n", "type": "g-counter"}]"#,
            r#"[{"name": "", "type": "g-counter", "state": {"counts": {}}}]"#,
            r#"[{"name": "n", "type": "g-counter", "state": {"counts": {"a": {"seq": 0, "count": 2}}}}]"#,
            r#"[{"name": "n", "type": "g-counter", "state": {"counts": {}}}, {"name": "n", "type": "g-counter", "state": {"counts": {}}}]"#,
            r#"[{"name": "n", "name": "m", "type": "g-counter", "state": {"counts": {}}}]"#,
            r#"{"name": "n"}"#,
            r#"[]"#,
        ];
        // Counter states, straight from text: every rule, and what breaks it.
        let mut generated = Vec::new();
        for key in ["a", "b:c", "bad key", "a\\u0062"] {
            for (seq, count) in [
                ("1", "1"),
                ("0", "3"),
                ("2", "1"),
                ("5", "7"),
                ("1.0", "1"),
                ("-1", "2"),
                ("\"1\"", "1"),
            ] {
                for extra in ["", ", \"x\": 1"] {
                    generated.push(format!(
                        r#"[{{"name": "n", "type": "g-counter", "state": {{"counts": {{"{key}": {{"seq": {seq}, "count": {count}{extra}}}}}}}}}]"#
                    ));
                    generated.push(format!(
                        r#"[{{"name": "n", "type": "pn-counter", "state": {{"counts": {{"{key}": {{"seq": {seq}, "p": {count}, "n": 0{extra}}}}}}}}}]"#
                    ));
                }
            }
        }
        generated.push(
            r#"[{"name": "n", "type": "g-counter", "state": {"counts": {}, "more": 1}}]"#.into(),
        );
        generated.push(r#"[{"name": "n", "type": "pn-counter", "state": null}]"#.into());
        generated.push(r#"[{"name": "n", "type": "g-counter", "state": {"counts": {"a": {"seq": 1, "count": 1}, "a": {"seq": 2, "count": 2}}}}]"#.into());
        for text in cases
            .iter()
            .copied()
            .chain(generated.iter().map(String::as_str))
        {
            let value: Value = serde_json::from_str(text).unwrap();
            let show = |r: Result<Store, ObjectsError>| match r {
                Ok(s) => Ok(objects_json(&s)),
                Err(e) => Err(ProtoError::from(e)),
            };
            assert_eq!(
                show(decode_objects_text(text, &from)),
                show(decode_objects(Some(&value), &from)),
                "{text}"
            );
        }
    }

    /// The ack is written as text by hand: it must be the JSON it claims.
    #[test]
    fn acks_are_json_with_every_accepted_version() {
        let mut server = Store::new(id("server"));
        let mut delta = Store::new(id("a"));
        for (name, who) in [("plain", "a"), ("qu\"o\\te é\n", "b@x:1")] {
            if let Object::GCounter(c) = delta.get_or_create(name, CrdtType::GCounter) {
                c.inc(&id(who), 3).unwrap();
            }
        }
        for msg_id in [Some(json!(7)), Some(json!("x\"y")), None] {
            let (ack, _) = commit_push(&mut server, &delta, msg_id.as_ref());
            let ack: Value = serde_json::from_str(&ack).unwrap_or_else(|e| panic!("{ack}: {e}"));
            let mut expected = json!({"type": "ack", "versions": [
                {"name": "plain", "type": "g-counter", "version": {"a": 1}},
                {"name": "qu\"o\\te é\n", "type": "g-counter", "version": {"b@x:1": 1}},
            ]});
            if let Some(i) = &msg_id {
                expected["id"] = i.clone();
            }
            assert_eq!(ack, expected);
        }
    }

    #[test]
    fn two_agents_sync_through_a_server_and_both_read_two() {
        let mut server = Store::new(id("server"));
        let mut a = Store::new(id("agent-1"));
        let mut b = Store::new(id("agent-2"));
        for s in [&mut a, &mut b] {
            let me = s.replica().clone();
            if let Object::GCounter(c) = s.get_or_create("metrics:requests", CrdtType::GCounter) {
                c.inc(&me, 1).unwrap();
            }
        }
        sync(&mut server, &mut a, &[]);
        sync(&mut server, &mut b, &[]);
        sync(&mut server, &mut a, &[]);
        for s in [&a, &b, &server] {
            assert_eq!(
                s.get("metrics:requests", CrdtType::GCounter)
                    .unwrap()
                    .value_json(),
                json!(2)
            );
        }
    }

    #[test]
    fn messages_before_hello_and_garbage_get_errors() {
        let server = Store::new(id("server"));
        let mut s = Session::default();
        let r = replies(&handle(&server, &mut s, "{not json"));
        assert_eq!(r[0]["code"], "bad-json");
        let r = replies(&handle(&server, &mut s, r#"{"type":"sync","id":7}"#));
        assert_eq!(
            (r[0]["code"].clone(), r[0]["id"].clone()),
            (json!("hello-first"), json!(7))
        );
        handle(&server, &mut s, &hello(&id("a")).to_string());
        let r = replies(&handle(&server, &mut s, r#"{"type":"frobnicate"}"#));
        assert_eq!(r[0]["code"], "bad-message");
        let r = replies(&handle(
            &server,
            &mut s,
            r#"{"type":"push","objects":[{"name":"x","type":"g-counter","state":{"counts":{"a":{"seq":2,"count":1}}}}]}"#,
        ));
        assert_eq!(r[0]["code"], "bad-state");
        assert!(
            r[0]["message"]
                .as_str()
                .unwrap()
                .contains("impossible causal state")
        );
        let e = handle(
            &server,
            &mut Session::default(),
            r#"{"type":"hello","replica":"a","protocol":9}"#,
        );
        assert!(matches!(e.last(), Some(Effect::Close(1002))));
    }

    #[test]
    fn a_second_sync_sends_only_the_change() {
        let mut server = Store::new(id("server"));
        let mut a = Store::new(id("agent-1"));
        if let Object::OrSet(s) = a.get_or_create("tasks:big", CrdtType::OrSet) {
            for i in 0..10_000 {
                s.add(&id("agent-1"), json!(format!("task-{i}"))).unwrap();
            }
        }
        sync(&mut server, &mut a, &[]);
        let mut b = Store::new(id("agent-2"));
        sync(&mut server, &mut b, &[]);
        if let Some(Object::OrSet(s)) = b.get_mut("tasks:big", CrdtType::OrSet) {
            s.add(&id("agent-2"), json!("one more")).unwrap();
        }
        sync(&mut server, &mut b, &[]);
        // agent-1 now syncs: what crosses the wire is small.
        let ex = sync_in_memory(&mut server, &mut a, &[], DEFAULT_MAX_MESSAGE_BYTES).unwrap();
        assert!(ex.bytes < 2048, "{ex:?}");
        assert_eq!(
            a.get("tasks:big", CrdtType::OrSet)
                .unwrap()
                .value_json()
                .as_array()
                .unwrap()
                .len(),
            10_001
        );
    }

    /// With a small limit, a client and a server that each hold many
    /// objects (names interleaved, some on both) sync range by range, every
    /// message under the limit, and end with the same state; a second sync
    /// then moves almost nothing.
    #[test]
    fn ranges_cover_every_name_once_under_a_small_limit() {
        let limit = 4096;
        let mut server = Store::new(id("server"));
        let mut client = Store::new(id("agent-1"));
        for i in 0..600 {
            let name = format!("n:{i:04}");
            let (who, store) = match i % 3 {
                0 => ("agent-2", &mut server),
                1 => ("agent-1", &mut client),
                _ => ("agent-3", &mut server),
            };
            if let Object::GCounter(c) = store.get_or_create(&name, CrdtType::GCounter) {
                c.inc(&id(who), 1 + i as u64).unwrap();
            }
            if i % 3 == 2 {
                // On both sides, with different changes.
                if let Object::GCounter(c) = client.get_or_create(&name, CrdtType::GCounter) {
                    c.inc(&id("agent-1"), 1).unwrap();
                }
            }
        }
        let ex = sync_in_memory(&mut server, &mut client, &[], limit).unwrap();
        assert!(ex.messages > 10, "{ex:?}");
        assert_eq!(server.versions(), client.versions());
        assert_eq!(server.len(), 600);
        let again = sync_in_memory(&mut server, &mut client, &[], limit).unwrap();
        assert!(again.bytes < ex.bytes / 2, "{again:?} after {ex:?}");
    }
}

mod text_test {
    use super::super::*;

    fn id(s: &str) -> ReplicaId {
        ReplicaId::new(s).unwrap()
    }

    fn run_sync(server: &mut Store, client: &mut Store) {
        sync_in_memory(server, client, &[], DEFAULT_MAX_MESSAGE_BYTES).unwrap();
    }

    #[test]
    fn concurrent_text_edits_converge_through_deltas() {
        let mut server = Store::new(id("server"));
        let mut agents: Vec<Store> = (1..=3)
            .map(|i| Store::new(id(&format!("agent-{i}"))))
            .collect();
        let edit = |s: &mut Store, pos: usize, text: &str| {
            let me = s.replica().clone();
            if let Object::Rga(t) = s.get_or_create("doc", CrdtType::Rga) {
                t.insert(&me, pos, text).unwrap();
            }
        };
        edit(&mut agents[0], 0, "Hello World");
        for a in agents.iter_mut() {
            run_sync(&mut server, a);
        }
        edit(&mut agents[0], 5, ",");
        edit(&mut agents[1], 11, "!");
        edit(&mut agents[2], 6, "big ");
        for _ in 0..2 {
            for a in agents.iter_mut() {
                run_sync(&mut server, a);
            }
        }
        for a in &agents {
            assert_eq!(
                a.get("doc", CrdtType::Rga).unwrap().value_json(),
                json!("Hello, big World!")
            );
        }
    }
}
