//! The data tree. (Filled in by the tree work.)
