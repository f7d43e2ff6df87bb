//! Placeholder.
use std::rc::Rc;
use crate::error::{Phase, VmError, VmResult};
pub fn compile_program(_ast: &crate::ast::Program, _source: &str, _file: &str) -> VmResult<Rc<crate::Program>> {
    Err(VmError::syntax(Phase::Compile, "compiler not built yet", 1, 1))
}
