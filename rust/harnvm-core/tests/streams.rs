//! The Harn-written prelude on the core VM (no Python): the `stream`
//! namespace over lists, channels and streams (laziness, output of
//! callbacks, error propagation), `iter(channel)`, `parallel_race`, and
//! waiting builtins used as callbacks.

mod common;

use common::{error_of, logs};

fn main_body(body: &str) -> String {
    format!("pipeline main() {{\n{body}\n}}\n")
}

#[test]
fn operators_over_lists_and_streams() {
    let out = logs(&main_body(
        r#"
        log(stream.collect(stream.map([1, 2, 3], { x -> x + 1 })))
        log(stream.collect(stream.scan([1, 2, 3], 0, { a, x -> a + x })))
        log(stream.fold(stream.filter(1 to 6, { x -> x % 2 == 0 }), 0, { a, x -> a + x }))
        log(stream.collect(stream.zip([1, 2], ["a", "b", "c"])))
        log(stream.collect(stream.interleave([1, 2, 3], [10])))
        log(stream.collect(stream.take(stream.map(1 to 1000000000, { x -> x * 2 }), 3)))
        "#,
    ));
    assert_eq!(out, ["[2, 3, 4]", "[1, 3, 6]", "12", "[(1, a), (2, b)]", "[1, 10, 2, 3]", "[2, 4, 6]"]);
}

#[test]
fn merge_and_race_do_not_wait_on_an_empty_channel() {
    let out = logs(&main_body(
        r#"
        let empty = channel("empty", 1)
        let ready = channel("ready", 1)
        send(ready, "ready")
        log(stream.first(stream.merge(empty, ready)))
        let slow = channel("slow", 1)
        let winner = channel("winner", 1)
        send(winner, "winner")
        log(stream.first(stream.race(slow, winner)))
        "#,
    ));
    assert_eq!(out, ["ready", "winner"]);
}

#[test]
fn callback_output_is_kept_and_errors_reach_the_consumer() {
    let out = logs(&main_body(
        r#"
        let s = stream.tap([1, 2], { x -> log("tap ${x}") })
        log(stream.collect(s))
        let bad = stream.map([1, 2], { x -> if x == 2 { throw "source failed" }
          return x })
        log(try { stream.collect(stream.merge(bad, [3]))
          "missing" } catch (e) { e })
        "#,
    ));
    assert_eq!(out, ["tap 1", "tap 2", "[1, 2]", "source failed"]);
}

#[test]
fn a_bad_source_is_a_clear_uncaught_error() {
    let e = error_of(&main_body("stream.map(42, { x -> x })"));
    assert!(e.contains("stream.map: value of type int is not a stream source"), "{e}");
}

#[test]
fn iter_over_a_channel_parallel_race_and_waiting_callbacks() {
    let out = logs(&main_body(
        r#"
        let ch = channel("c", 4)
        spawn {
          sleep(5)
          send(ch, 1)
          send(ch, 2)
          close_channel(ch)
        }
        log(iter(ch).map({ x -> x + 1 }).to_list())
        log(parallel_race([20, 5], { ms -> sleep(ms)
          ms }))
        let a = channel("a", 1)
        spawn { sleep(5)
          send(a, "late") }
        log([a].map(receive))
        "#,
    ));
    assert_eq!(out, ["[2, 3]", "5", "[late]"]);
}
