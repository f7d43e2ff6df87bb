//! Placeholder.
use std::rc::Rc;
use crate::error::{VmError, VmResult};
use crate::value::Value;
#[derive(Clone, Debug)]
pub struct VmOptions { pub max_frames: usize, pub inline_caches: bool, pub time_limit_ms: Option<u64> }
impl Default for VmOptions { fn default() -> Self { VmOptions { max_frames: 512, inline_caches: true, time_limit_ms: None } } }
pub struct Vm { pub options: VmOptions, output: Option<Box<dyn FnMut(&str)>> }
impl Vm {
    pub fn new(options: VmOptions) -> Vm { Vm { options, output: None } }
    pub fn set_output(&mut self, sink: Box<dyn FnMut(&str)>) { self.output = Some(sink); }
    pub fn run(&mut self, _program: &Rc<crate::Program>) -> VmResult<Value> { Err(VmError::runtime("vm not built yet")) }
}
