//! `crdt decode FRAME|-`: a protocol message, or a line of the server's
//! log, in the words of `crdt log` (for debugging a client written in
//! another language).

use std::io::{Read, Write};

use anyhow::{Context as _, Result, anyhow, bail};
use crdt::ReplicaId;
use crdt::history::describe_delta;
use crdt::objects_line::decode_objects;
use serde_json::{Value, json};

use super::output::{Out, Report, one_line};

/// Most bytes read from stdin: a server log can be large, a frame is not
/// larger than the protocol's default limit by much.
const MAX_INPUT: u64 = 256 << 20;

pub fn decode(out: &mut Out<impl Write>, frame: &str) -> Result<()> {
    let text = if frame == "-" {
        let mut text = String::new();
        std::io::stdin()
            .take(MAX_INPUT + 1)
            .read_to_string(&mut text)
            .context("cannot read stdin (it must be UTF-8 text)")?;
        if text.len() as u64 > MAX_INPUT {
            bail!("stdin holds more than {MAX_INPUT} bytes");
        }
        text
    } else {
        frame.to_string()
    };
    let many = text.lines().filter(|l| !l.trim().is_empty()).count() > 1;
    // Every line is decoded before anything is printed: a line that does
    // not decode fails the command with nothing half written.
    let mut decoded = Vec::new();
    for (i, line) in text.lines().enumerate() {
        // A server log ends in zeros (space written ahead of use).
        let line = line.trim_end_matches('\0').trim();
        if line.is_empty() {
            continue;
        }
        let at = if many {
            format!("line {}", i + 1)
        } else {
            "the frame".to_string()
        };
        let (head, objects) = message(line).with_context(|| format!("{at} does not decode"))?;
        decoded.push(Decoded {
            line: i + 1,
            many,
            head,
            objects,
        });
    }
    let mut list = out.list();
    for d in &decoded {
        list.item(d)?;
    }
    list.finish()?;
    Ok(())
}

/// One message (or log line) decoded: its fields and its objects described.
struct Decoded {
    /// Its line in the input, from 1.
    line: usize,
    /// Whether the input has several lines (then each is numbered).
    many: bool,
    head: Value,
    objects: Option<Vec<Described>>,
}

impl Report for Decoded {
    fn json(&self) -> Value {
        let mut doc = self.head.clone();
        doc["line"] = json!(self.line);
        if let Some(list) = &self.objects {
            doc["objects"] = Value::Array(list.iter().map(|o| o.json.clone()).collect());
        }
        doc
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> std::io::Result<()> {
        let (st, head) = (out.style(), &self.head);
        let mut words = head["type"].as_str().unwrap_or("log line").to_string();
        if let Some(id) = head.get("id") {
            words.push_str(&format!(" (id {})", one_line(id, false)));
        }
        let mut shown = vec!["type", "id"];
        // A server log line says who pushed it and when.
        if head.get("type").is_none()
            && let (Some(who), Some(ms)) = (head["replica"].as_str(), head["time_ms"].as_u64())
        {
            words.push_str(&format!(
                ": pushed by {who} at {}",
                super::debug::fmt_ms(ms)
            ));
            shown.extend(["replica", "time_ms"]);
        }
        for (k, v) in head.as_object().into_iter().flatten() {
            if !shown.contains(&k.as_str()) {
                words.push_str(&format!("  {k}: {}", one_line(v, true)));
            }
        }
        let prefix = if self.many {
            format!("{}: ", self.line)
        } else {
            String::new()
        };
        writeln!(out, "{prefix}{}", st.bold(&words))?;
        for o in self.objects.iter().flatten() {
            writeln!(out, "  {}", o.line)?;
        }
        Ok(())
    }
}

/// One object of a message, described.
struct Described {
    line: String,
    json: Value,
}

/// A message's type and other fields (its objects left out), and its
/// objects described when it has any.
fn message(text: &str) -> Result<(Value, Option<Vec<Described>>)> {
    let v: Value = serde_json::from_str(text).map_err(|e| anyhow!("it is not JSON: {e}"))?;
    let Some(top) = v.as_object() else {
        bail!("it is not a JSON object: a message and a log line are objects");
    };
    let mut head = serde_json::Map::new();
    if !top.contains_key("type") && !top.contains_key("objects") {
        bail!("it has neither \"type\" (a protocol message) nor \"objects\" (a log line)");
    }
    for (k, val) in top {
        if k != "objects" {
            head.insert(k.clone(), summarize(k, val));
        }
    }
    let Some(list) = top.get("objects") else {
        return Ok((Value::Object(head), None));
    };
    // Who sent it is not in the frame: a placeholder replica decodes it.
    let from = ReplicaId::new("decode").expect("a valid id");
    let store = decode_objects(Some(list), &from).map_err(|e| anyhow!("{e}"))?;
    let described = store
        .iter()
        .map(|(name, o)| {
            let replicas: Vec<String> = o
                .max_seqs()
                .iter()
                .map(|(r, s)| format!("{r}:{s}"))
                .collect();
            let words = describe_delta(o);
            let words = if words.is_empty() {
                "(no visible change)".to_string()
            } else {
                words
            };
            Described {
                line: format!(
                    "{name}  {}  {words}  (events up to {})",
                    o.ty(),
                    replicas.join(", ")
                ),
                json: json!({"name": name, "type": o.ty().as_str(), "summary": describe_delta(o),
                    "replicas": o.max_seqs().iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
                    "delta": o.state_json()}),
            }
        })
        .collect();
    Ok((Value::Object(head), Some(described)))
}

/// A field as shown: lists of versions are counted, not printed whole.
fn summarize(key: &str, v: &Value) -> Value {
    match (key, v) {
        ("versions" | "want", Value::Array(list)) => {
            let names: Vec<String> = list
                .iter()
                .filter_map(|x| {
                    Some(format!(
                        "{} {}",
                        x.get("name")?.as_str()?,
                        one_line(x.get("version")?, false)
                    ))
                })
                .collect();
            Value::from(names)
        }
        _ => v.clone(),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::cli::output::printed;

    #[test]
    fn a_decoded_line_is_numbered_when_the_input_has_several() {
        let (head, objects) = message(r#"{"type":"push","id":2,"objects":[]}"#).unwrap();
        let mut d = Decoded {
            line: 3,
            many: true,
            head,
            objects,
        };
        let (text, doc) = printed(&d);
        assert_eq!(text, "3: push (id 2)\n");
        assert_eq!(
            (doc["line"].clone(), doc["objects"].clone()),
            (json!(3), json!([]))
        );
        d.many = false;
        assert_eq!(printed(&d).0, "push (id 2)\n");
    }
}
