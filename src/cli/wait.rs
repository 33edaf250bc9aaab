//! `crdt wait NAME --until EXPR`: block until a condition holds.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};

use super::net::{apply_update, client_failure};
use super::output::{Out, Report, one_line};
use super::{Ctx, Exit};

/// A condition of `crdt wait --until`.
#[derive(Debug, PartialEq)]
enum Cond {
    Cmp(&'static str, Value),
    Contains(Value),
    Len(&'static str, f64),
}

fn parse_cond(expr: &str) -> Result<Cond> {
    let expr = expr.trim();
    let parse_value = |s: &str| {
        serde_json::from_str(s.trim()).unwrap_or_else(|_| Value::String(s.trim().to_string()))
    };
    if let Some(rest) = expr.strip_prefix("contains ") {
        return Ok(Cond::Contains(parse_value(rest)));
    }
    let ops = [">=", "<=", "==", "!=", ">", "<"];
    let split = |s: &str| -> Option<(&'static str, String)> {
        ops.iter()
            .find(|op| s.starts_with(**op))
            .map(|op| (*op, s[op.len()..].trim().to_string()))
    };
    if let Some(rest) = expr.strip_prefix("len ") {
        let (op, n) =
            split(rest.trim()).ok_or_else(|| anyhow!("expected `len OP N`, e.g. `len >= 3`"))?;
        let n: f64 = n
            .parse()
            .map_err(|_| anyhow!("`len {op}` needs a number, not {n:?}"))?;
        return Ok(Cond::Len(op, n));
    }
    let (op, v) = split(expr).ok_or_else(|| {
        anyhow!("cannot read {expr:?}: use `>= N`, `== VALUE`, `contains X` or `len >= N`")
    })?;
    let value = parse_value(&v);
    if !matches!(op, "==" | "!=") && !value.is_number() {
        bail!("`{op}` compares numbers; {v:?} is not a number");
    }
    Ok(Cond::Cmp(op, value))
}

fn compare(op: &str, a: f64, b: f64) -> bool {
    match op {
        ">=" => a >= b,
        "<=" => a <= b,
        ">" => a > b,
        "<" => a < b,
        "==" => a == b,
        _ => a != b,
    }
}

/// Two JSON numbers in order: exactly when both are integers (a counter's
/// value can pass 64 bits), else as floats.
fn number_order(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    let (Value::Number(a), Value::Number(b)) = (a, b) else {
        return None;
    };
    match (a.as_i128(), b.as_i128()) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn holds(cond: &Cond, value: &Value) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match cond {
        Cond::Cmp(op @ ("==" | "!="), want) => {
            let equal = match number_order(value, want) {
                Some(order) => order == Equal,
                None => value == want,
            };
            (*op == "==") == equal
        }
        Cond::Cmp(op, want) => match number_order(value, want) {
            Some(order) => match *op {
                ">=" => order != Less,
                "<=" => order != Greater,
                ">" => order == Greater,
                _ => order == Less,
            },
            None => false,
        },
        Cond::Contains(x) => match value {
            Value::Array(items) => items.contains(x),
            // A map: one of its keys.
            Value::Object(keys) => x.as_str().is_some_and(|k| keys.contains_key(k)),
            Value::String(text) => {
                text.contains(x.as_str().map_or(x.to_string(), String::from).as_str())
            }
            _ => false,
        },
        Cond::Len(op, n) => {
            let len = match value {
                Value::Array(items) => items.len(),
                Value::Object(keys) => keys.len(),
                Value::String(s) => s.chars().count(),
                _ => return false,
            };
            compare(op, len as f64, *n)
        }
    }
}

/// The value of `name` as this replica has it (`None`: not here yet), or an
/// error when `cond` can never hold for its type.
fn current(ctx: &Ctx, name: &str, cond: &Cond, until: &str) -> Result<Option<Value>> {
    let store = ctx.load_name(name)?;
    let Some(o) = store
        .as_ref()
        .and_then(|s| s.objects(name).first().copied())
    else {
        return Ok(None);
    };
    if let Err(why) = possible(cond, o.ty()) {
        bail!(
            "`{until}` can never hold for {name}: it is {} {}; {why}",
            o.ty().article(),
            o.ty()
        );
    }
    Ok(Some(o.value_json()))
}

/// Why `cond` can never hold for an object of type `ty`, if it cannot (a
/// register may hold any value, so anything may hold for it).
fn possible(cond: &Cond, ty: crdt::CrdtType) -> std::result::Result<(), &'static str> {
    use crdt::CrdtType as T;
    let ordering = matches!(cond, Cond::Cmp(op, _) if !matches!(*op, "==" | "!="));
    match ty {
        T::GCounter | T::PnCounter => match cond {
            Cond::Contains(_) | Cond::Len(..) => {
                Err("its value is a number: compare it (`>= N`, `== N`)")
            }
            _ => Ok(()),
        },
        T::OrSet if ordering => {
            Err("its value is a list of members: use `len >= N` or `contains X`")
        }
        T::Rga if ordering => Err("its value is text: use `len >= N` or `contains X`"),
        T::Map if ordering => {
            Err("its value is an object of keys: use `contains KEY`, `len >= N` or `== VALUE`")
        }
        _ => Ok(()),
    }
}

/// `wait`: the value, and whether the condition held (text: the value
/// when it did, nothing when the time ran out).
struct Waited<'a> {
    name: &'a str,
    value: &'a Value,
    holds: bool,
}

impl Report for Waited<'_> {
    fn json(&self) -> Value {
        json!({"name": self.name, "value": self.value, "holds": self.holds})
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> std::io::Result<()> {
        if self.holds {
            writeln!(out, "{}", one_line(self.value, false))?;
        }
        Ok(())
    }
}

pub fn wait(ctx: &Ctx, out: &mut Out, name: &str, until: &str, timeout: f64) -> Result<Exit> {
    let cond = parse_cond(until)?;
    let deadline = Instant::now() + Duration::from_secs_f64(timeout.max(0.0));
    let report = |out: &mut Out, value: &Value, holds: bool| -> Result<Exit> {
        out.report(&Waited { name, value, holds })?;
        Ok(if holds { Exit::Success } else { Exit::Negative })
    };
    if let Some(v) = current(ctx, name, &cond, until)?
        && holds(&cond, &v)
    {
        return report(out, &v, true);
    }
    if ctx.url.is_none() {
        // Without an endpoint only other local processes can change it: poll the file.
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            if let Some(v) = current(ctx, name, &cond, until)?
                && holds(&cond, &v)
            {
                return report(out, &v, true);
            }
        }
        let v = current(ctx, name, &cond, until)?.unwrap_or(Value::Null);
        eprintln!("crdt: timed out after {timeout} s: {name} is {v}");
        return report(out, &v, false);
    }
    let (mut client, _) = match ctx.sync_selected(&[name.to_string()], true) {
        Ok(x) => x,
        Err(e) => return client_failure(e),
    };
    loop {
        if let Some(v) = current(ctx, name, &cond, until)?
            && holds(&cond, &v)
        {
            client.close();
            return report(out, &v, true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let v = current(ctx, name, &cond, until)?.unwrap_or(Value::Null);
            eprintln!("crdt: timed out after {timeout} s: {name} is {v}");
            client.close();
            return report(out, &v, false);
        }
        match client.recv(left.min(Duration::from_secs(1))) {
            Ok(Some(msg)) if msg["type"] == "update" => {
                apply_update(ctx, &msg)?;
            }
            Ok(_) => {}
            Err(e) => return client_failure(e),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::cli::output::printed;

    #[test]
    fn wait_prints_the_value_when_it_holds_and_the_verdict_as_json() {
        let three = json!(3);
        let holds = |holds| {
            printed(&Waited {
                name: "votes",
                value: &three,
                holds,
            })
        };
        assert_eq!(holds(true).0, "3\n");
        assert_eq!(holds(false).0, "");
        assert_eq!(
            holds(false).1,
            json!({"name": "votes", "value": 3, "holds": false})
        );
    }

    #[test]
    fn conditions_parse_and_hold() {
        assert!(holds(&parse_cond(">= 3").unwrap(), &json!(3)));
        assert!(!holds(&parse_cond("> 3").unwrap(), &json!(3)));
        assert!(holds(&parse_cond("== fast").unwrap(), &json!("fast")));
        assert!(holds(
            &parse_cond("== {\"a\": 1}").unwrap(),
            &json!({"a": 1})
        ));
        assert!(holds(&parse_cond("!= 2").unwrap(), &json!(3)));
        assert!(holds(
            &parse_cond("contains task-7").unwrap(),
            &json!(["task-7"])
        ));
        assert!(holds(&parse_cond("contains llo").unwrap(), &json!("hello")));
        // A map: its keys.
        let flags = json!({"ai-review": true, "dark-mode": false});
        assert!(holds(&parse_cond("contains ai-review").unwrap(), &flags));
        assert!(!holds(&parse_cond("contains true").unwrap(), &flags));
        assert!(holds(&parse_cond("len >= 2").unwrap(), &flags));
        assert!(!holds(&parse_cond("len > 2").unwrap(), &flags));
        assert!(possible(&parse_cond(">= 1").unwrap(), crdt::CrdtType::Map).is_err());
        assert!(holds(&parse_cond("len >= 2").unwrap(), &json!([1, 2])));
        assert!(parse_cond("~ 3").is_err());
        assert!(parse_cond(">= many").is_err());
    }
}
