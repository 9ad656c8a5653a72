//! ACL evaluation. (Filled in by the tree work.)
