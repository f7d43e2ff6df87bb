//! The ground floor: values and the object model, execution state as data,
//! the native-call interface, errors, and the operators' semantics. Every
//! other floor builds on this one.

pub mod budget;
pub mod deep;
pub mod dict;
pub mod error;
pub mod fiber;
pub mod harness;
pub mod iter;
pub mod native;
pub mod ops;
pub mod sched_object;
#[cfg(test)]
pub(crate) mod test_rng;
pub mod text;
pub mod value;
