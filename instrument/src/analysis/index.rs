//! Function indices and names as the input numbers them (imports first,
//! then definitions), for ordinals, reports and messages, and the ids of
//! the fork imports the configuration names.

use std::collections::{BTreeMap, BTreeSet};

use walrus::{FunctionId, FunctionKind, Module, ValType};

use crate::{Config, Error, ImportName, Result};

/// Index and display name of every function of the input.
pub struct FunctionIndex {
    index: BTreeMap<FunctionId, u32>,
    /// By index: the function.
    ids: Vec<FunctionId>,
    names: BTreeMap<FunctionId, String>,
}

impl FunctionIndex {
    /// Numbers the functions of `module` as the input does.
    pub fn build(module: &Module) -> FunctionIndex {
        let imports = module
            .funcs
            .iter()
            .filter(|f| matches!(f.kind, FunctionKind::Import(_)))
            .map(|f| f.id());
        let ids: Vec<FunctionId> = imports
            .chain(module.funcs.iter_local().map(|(id, _)| id))
            .collect();
        let index: BTreeMap<FunctionId, u32> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| (*id, n as u32))
            .collect();
        let names = module
            .funcs
            .iter()
            .map(|f| {
                let name = match (&f.kind, &f.name) {
                    (FunctionKind::Import(imp), _) => {
                        let imp = module.imports.get(imp.import);
                        format!("{}.{}", imp.module, imp.name)
                    }
                    (_, Some(n)) => n.clone(),
                    (_, None) => {
                        format!("func[{}]", index.get(&f.id()).copied().unwrap_or(u32::MAX))
                    }
                };
                (f.id(), name)
            })
            .collect();
        FunctionIndex { index, ids, names }
    }

    /// The input's index of `f`.
    pub fn of(&self, f: FunctionId) -> u32 {
        self.index.get(&f).copied().unwrap_or(u32::MAX)
    }

    /// The function at input index `i`.
    pub fn id(&self, i: u32) -> Option<FunctionId> {
        self.ids.get(i as usize).copied()
    }

    /// Whether `f` existed in the input (functions the runtime adds did not).
    pub fn contains(&self, f: FunctionId) -> bool {
        self.index.contains_key(&f)
    }

    /// Number of functions in the input.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// `f`'s name from the name section, `module.name` for an import, else
    /// `func[INDEX]`.
    pub fn name(&self, f: FunctionId) -> String {
        self.names.get(&f).cloned().unwrap_or_default()
    }

    /// The function a user means by `name`: a display name or `func[INDEX]`.
    pub fn find(&self, name: &str) -> Option<FunctionId> {
        self.index
            .iter()
            .find(|(id, i)| {
                self.names.get(id).is_some_and(|n| n == name) || format!("func[{i}]") == name
            })
            .map(|(id, _)| *id)
    }
}

/// The ids of the configured fork imports the module imports. Fork imports
/// must be numeric (ABI §1).
pub fn fork_imports(module: &Module, config: &Config) -> Result<BTreeSet<FunctionId>> {
    let mut out = BTreeSet::new();
    for imp in module.imports.iter() {
        if let walrus::ImportKind::Function(fid) = imp.kind {
            let name = ImportName::new(imp.module.clone(), imp.name.clone());
            if config.fork_imports.contains(&name) {
                let ty = module.types.get(module.funcs.get(fid).ty());
                if ty
                    .params()
                    .iter()
                    .chain(ty.results())
                    .any(|t| matches!(t, ValType::Ref(_)))
                {
                    return Err(Error::Module(format!(
                        "fork import `{name}` has reference-typed parameters or results; fork imports must be numeric"
                    )));
                }
                out.insert(fid);
            }
        }
    }
    Ok(out)
}
